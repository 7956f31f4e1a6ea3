//! How fast the sandbox serves, and how much memory a million bookings cost.
//!
//! Starts the real binary (`understory-sync sandbox --bookings 1000000`), reads its RSS from
//! /proc, then walks pages of 100 bookings with a plain reqwest client over loopback, first one
//! client, then four at once. Prints figures; asserts nothing (the machine is shared).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_understory-sync");
const BOOKINGS: u32 = 1_000_000;
const RUN_FOR: Duration = Duration::from_secs(4);

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn walk(client: reqwest::Client, base: String, token: String, until: Instant) -> u64 {
    let mut pages = 0;
    let mut cursor = String::new();
    while Instant::now() < until {
        let v: serde_json::Value = client
            .get(format!(
                "{base}/v1/bookings?limit=100&sort=-updated_at&cursor={cursor}"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .expect("page")
            .json()
            .await
            .expect("json");
        pages += 1;
        cursor = v["next"].as_str().unwrap_or_default().to_owned();
    }
    pages
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["sandbox", "--port", "0", "--bookings", &BOOKINGS.to_string()])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sandbox");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let base = loop {
        let line = lines.next().expect("sandbox output").expect("line");
        if let Some(rest) = line.strip_prefix("sandbox: serving Understory's API and token endpoint on ") {
            break rest.trim().to_owned();
        }
    };
    let ready = started.elapsed();
    let rss_idle = rss_mib(child.id());
    // A plain client on purpose: the figure is the sandbox's, not our client's settings.
    let client = reqwest::Client::builder().build().expect("client");
    let token: serde_json::Value = client
        .post(format!("{base}/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=booking.read&audience=https://api.understory.io&client_id=sandbox-client&client_secret=sandbox-secret")
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let token = token["access_token"].as_str().expect("access_token").to_owned();

    let until = Instant::now() + RUN_FOR;
    let one = walk(client.clone(), base.clone(), token.clone(), until).await;
    let until = Instant::now() + RUN_FOR;
    let four: u64 =
        futures::future::join_all((0..4).map(|_| walk(client.clone(), base.clone(), token.clone(), until)))
            .await
            .into_iter()
            .sum();
    let rss_after = rss_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();

    println!("sandbox benchmark ({BOOKINGS} bookings, pages of 100, sort=-updated_at)");
    println!("  ready after            {:>10.2} s", ready.as_secs_f64());
    println!("  RSS idle               {rss_idle:>10.1} MiB   (goal: < 200 MiB)");
    println!("  RSS after serving      {rss_after:>10.1} MiB");
    println!(
        "  1 client               {:>10.0} pages/s",
        one as f64 / RUN_FOR.as_secs_f64()
    );
    println!(
        "  4 clients              {:>10.0} pages/s",
        four as f64 / RUN_FOR.as_secs_f64()
    );
}
