mod common;
use std::time::Duration;
use common::budget_trial::{self, Budget};
fn main() {
    tracing_subscriber::fmt().with_env_filter(std::env::var("LOG").unwrap_or("understory_sync::pace=info".into())).with_ansi(false).init();
    let budget = Budget::three()[0];
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(std::env::var("REAL").is_err()).build().unwrap();
    rt.block_on(async {
        let sb = budget_trial::sandbox(budget, 750).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = budget_trial::job(&sb, &dir.path().join("b.sqlite"));
        sb.record();
        let t0 = tokio::time::Instant::now();
        let r = tokio::select! { r = understory_sync::sync::run(&cfg, understory_sync::shutdown::Stop::never()) => Some(r), () = tokio::time::sleep(Duration::from_secs(std::env::var("SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(600))) => None };
        let r = r.unwrap_or_else(|| Err(understory_sync::sync::Error::Task{what:"x", detail: "killed".into()}));
        println!("{:?} after {:?}", r.as_ref().map(|r| (&r.status, r.pace)), t0.elapsed());
        let log = sb.arrivals();
        let mut by: std::collections::BTreeMap<(String,u16),usize> = Default::default();
        for a in log.iter().filter(|a| a.status==429) { println!("429 at {:.1}", a.at.duration_since(log[0].at).as_secs_f64()); }
        let mut per: std::collections::BTreeMap<u64,usize> = Default::default();
        for a in &log { *per.entry(a.at.duration_since(log[0].at).as_secs()/10*10).or_default() += 1; }
        println!("per 10 s: {per:?}");
        for a in &log { *by.entry((a.path.split('/').take(3).collect::<Vec<_>>().join("/"), a.status)).or_default() += 1; }
        println!("{by:?}");
    });
}
