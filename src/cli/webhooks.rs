//! `webhooks register|list|unregister`: the account's subscriptions for this receiver, and their
//! signing secrets, which `register` stores sealed the moment the API hands them over.

use chrono::Utc;

use understory_sync::api::{ApiClient, Stats};
use understory_sync::auth::token_vault::Key;
use understory_sync::config::{self, Config, Webhooks};
use understory_sync::shutdown;
use understory_sync::webhooks::secrets::Secrets;
use understory_sync::webhooks::subscriptions::{self, SCOPES, Subscription};

use super::config_arg::ConfigArg;
use super::exit::Exit;

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Subscribe URL to the events of the enabled streams (one subscription per URL: registering
    /// again updates it) and store its signing secret, sealed; prints the subscription's id.
    Register {
        #[command(flatten)]
        config: ConfigArg,
        /// The public https address the receiver is reached at (through the reverse proxy).
        #[arg(long)]
        url: String,
    },
    /// List the account's subscriptions, marking those whose secret is stored here.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Delete a subscription and forget its secret: the one given, or every one whose secret is
    /// stored here.
    Unregister {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        id: Option<String>,
    },
}

type Failed = (Exit, anyhow::Error);

fn fail(exit: Exit, e: impl Into<anyhow::Error>) -> Failed {
    (exit, e.into())
}

pub async fn webhooks(action: Action) -> Result<Exit, Failed> {
    match action {
        Action::Register { config, url } => register(&config, &url).await,
        Action::List { config } => list(&config).await,
        Action::Unregister { config, id } => unregister(&config, id.as_deref()).await,
    }
}

/// The config, which must have a `[webhooks]` section.
fn load(arg: &ConfigArg) -> Result<(Config, Webhooks), Failed> {
    let cfg =
        config::load(&arg.path, &config::Environment::from_process()).map_err(|e| fail(Exit::Config, e))?;
    let hooks = cfg.webhooks.clone().ok_or_else(|| {
        fail(
            Exit::Config,
            anyhow::anyhow!(
                "config section `[webhooks]`: missing: add it (listen, path, key_file) to receive webhooks"
            ),
        )
    })?;
    Ok((cfg, hooks))
}

fn client(cfg: &Config) -> Result<ApiClient, Failed> {
    ApiClient::new(cfg, &SCOPES, shutdown::Stop::never(), None)
        .map_err(|e| fail(Exit::Config, anyhow::anyhow!(e)))
}

fn api_failed(e: subscriptions::Error) -> Failed {
    let exit = match &e {
        subscriptions::Error::Api(a) if a.is_auth() => Exit::Auth,
        _ => Exit::Api,
    };
    fail(exit, e)
}

/// The URL a subscription may deliver to: https, or http on loopback (a receiver on this
/// machine, e.g. against the sandbox). The signing secret protects the body's integrity, not its
/// privacy: plain http across a network would show every event to whoever is on the path.
fn receiver_url(url: &str) -> Result<String, Failed> {
    let parsed = url::Url::parse(url)
        .map_err(|e| fail(Exit::Config, anyhow::anyhow!("--url '{url}' is not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(parsed.to_string()),
        "http" if config::is_loopback(&parsed) => Ok(parsed.to_string()),
        "http" => Err(fail(
            Exit::Config,
            anyhow::anyhow!(
                "--url '{url}' is plain http on a network address: deliveries would cross the network in clear; use the https address of your reverse proxy"
            ),
        )),
        other => Err(fail(
            Exit::Config,
            anyhow::anyhow!("--url '{url}': scheme '{other}' is not https"),
        )),
    }
}

async fn register(arg: &ConfigArg, url: &str) -> Result<Exit, Failed> {
    let (cfg, hooks) = load(arg)?;
    let url = receiver_url(url)?;
    let types = subscriptions::event_types(&cfg.streams);
    if types.is_empty() {
        return Err(fail(
            Exit::Config,
            anyhow::anyhow!(
                "config `[streams]`: none of the enabled streams has webhook events (bookings, events, experiences do); enable one"
            ),
        ));
    }
    let (key, created) =
        Key::load_or_create(&hooks.key_file, hooks.key_is_credential).map_err(|e| fail(Exit::Config, e))?;
    if created {
        eprintln!(
            "webhooks: created a new key {} (mode 0600); keep it, and keep it out of the database's backups",
            hooks.key_file.display()
        );
    }
    let secrets = Secrets::new(hooks.secret_file.clone());
    let stored = secrets.entries().map_err(|e| fail(Exit::Config, e))?;
    let api = client(&cfg)?;
    let stats = Stats::default();
    let existing = subscriptions::list(&api, &stats).await.map_err(api_failed)?;
    if let Some(sub) = existing.iter().find(|s| s.url == url) {
        if !stored.iter().any(|e| e.id == sub.id) {
            return Err(fail(
                Exit::Config,
                anyhow::anyhow!(
                    "subscription {} already delivers to {url}, but its secret is not stored in {} (it was registered elsewhere): run `understory-sync webhooks unregister --id {}` and register again",
                    sub.id,
                    hooks.secret_file.display(),
                    sub.id
                ),
            ));
        }
        let sub = subscriptions::update(&api, &stats, &sub.id, &url, &types)
            .await
            .map_err(api_failed)?;
        println!("{}", sub.id);
        eprintln!(
            "webhooks: updated subscription {} for {url}: {} event types",
            sub.id,
            types.len()
        );
        return Ok(Exit::Ok);
    }
    let (sub, secret) = match subscriptions::create(&api, &stats, &url, &types).await {
        Ok(created) => created,
        // Created, but no secret came: a subscription nobody can verify is only noise.
        Err(subscriptions::Error::NoSecret(id)) => {
            let _ = subscriptions::delete(&api, &stats, &id).await;
            return Err(fail(
                Exit::Api,
                anyhow::anyhow!(
                    "the API created subscription {id} without sending its signing secret; it was deleted again: try again, and report it to Understory if it repeats"
                ),
            ));
        }
        Err(e) => return Err(api_failed(e)),
    };
    if let Err(e) = secrets.add(&key, &sub.id, &url, &secret, Utc::now()) {
        // A subscription whose secret is lost only sends deliveries nobody can verify.
        let _ = subscriptions::delete(&api, &stats, &sub.id).await;
        return Err(fail(
            Exit::Config,
            anyhow::Error::new(e).context("the subscription was deleted again"),
        ));
    }
    println!("{}", sub.id);
    eprintln!(
        "webhooks: subscription {} delivers {} event types to {url}; its secret is stored sealed in {}. `run` verifies with it (a running `run` picks it up within seconds).",
        sub.id,
        types.len(),
        hooks.secret_file.display()
    );
    Ok(Exit::Ok)
}

async fn list(arg: &ConfigArg) -> Result<Exit, Failed> {
    let (cfg, hooks) = load(arg)?;
    let stored = Secrets::new(hooks.secret_file.clone())
        .entries()
        .map_err(|e| fail(Exit::Config, e))?;
    let api = client(&cfg)?;
    let subs = subscriptions::list(&api, &Stats::default())
        .await
        .map_err(api_failed)?;
    for Subscription {
        id,
        url,
        event_types,
        state,
    } in &subs
    {
        let here = if stored.iter().any(|e| &e.id == id) {
            "secret stored here"
        } else {
            "-"
        };
        println!(
            "{}\t{}\t{}\t{}\t{here}",
            printable(id),
            printable(state),
            printable(url),
            printable(&event_types.join(","))
        );
    }
    for e in stored.iter().filter(|e| !subs.iter().any(|s| s.id == e.id)) {
        println!(
            "{}\t(not in the account)\t{}\t-\tsecret stored here: `webhooks unregister --id {}` forgets it",
            printable(&e.id),
            printable(&e.url),
            printable(&e.id)
        );
    }
    Ok(Exit::Ok)
}

async fn unregister(arg: &ConfigArg, id: Option<&str>) -> Result<Exit, Failed> {
    let (cfg, hooks) = load(arg)?;
    let secrets = Secrets::new(hooks.secret_file.clone());
    let ids: Vec<String> = match id {
        Some(id) => vec![id.to_owned()],
        None => secrets
            .entries()
            .map_err(|e| fail(Exit::Config, e))?
            .into_iter()
            .map(|e| e.id)
            .collect(),
    };
    if ids.is_empty() {
        eprintln!(
            "webhooks: no subscription's secret is stored here; nothing to unregister (name one with --id)"
        );
        return Ok(Exit::Ok);
    }
    let api = client(&cfg)?;
    let stats = Stats::default();
    for id in ids {
        subscriptions::delete(&api, &stats, &id)
            .await
            .map_err(api_failed)?;
        secrets.remove(&id).map_err(|e| fail(Exit::Config, e))?;
        println!("{}", printable(&id));
        eprintln!(
            "webhooks: subscription {} deleted and its secret forgotten",
            printable(&id)
        );
    }
    Ok(Exit::Ok)
}

fn printable(s: &str) -> String {
    understory_sync::http::printable(s, 300)
}
