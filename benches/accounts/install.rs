//! One account as an operator installs it for instance NAME of the template units, under a
//! temporary root, and its start as `ExecStart=` with the unit's environment.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use understory_sandbox::Sandbox;

use super::BIN;

/// The address the shipped job config points at, replaced by each account's sandbox.
const SHIPPED_ADDRESS: &str = "http://127.0.0.1:8787";
/// The state directory the shipped job config names (instance `sandbox`).
const SHIPPED_STATE_DIR: &str = "/var/lib/understory-sync/sandbox/";
/// systemd's default `PATH` for services.
const UNIT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One account: its sandbox and the files an operator installs for instance `name`.
pub struct Account {
    pub name: String,
    pub seed: u64,
    pub sandbox: Sandbox,
    pub config: PathBuf,
    pub credentials: PathBuf,
    pub state: PathBuf,
    pub database: PathBuf,
    pub logs: PathBuf,
}

/// The shipped job config as an operator edits it for one instance: the sandbox's address and
/// the database line, nothing else.
fn job_config(shipped: &str, address: &str, state: &Path) -> String {
    let (mut addresses, mut databases) = (0, 0);
    let text = shipped
        .lines()
        .map(|line| {
            let mut line = line.to_owned();
            if !line.trim_start().starts_with('#') {
                addresses += line.matches(SHIPPED_ADDRESS).count();
                line = line.replace(SHIPPED_ADDRESS, address);
                if line.starts_with("database") && line.contains(SHIPPED_STATE_DIR) {
                    databases += 1;
                    line = line.replace(SHIPPED_STATE_DIR, &format!("{}/", state.display()));
                }
            }
            line + "\n"
        })
        .collect();
    assert_eq!(
        (addresses, databases),
        (2, 1),
        "config/sandbox-job.toml no longer names {SHIPPED_ADDRESS} twice and {SHIPPED_STATE_DIR} once"
    );
    text
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Writes `/etc/understory-sync/NAME.toml` and `NAME.secret`, the state directory systemd
/// creates (`StateDirectory=`, 0750) and the credential it copies in (`LoadCredential=`), all
/// under `root`.
pub fn install(root: &Path, name: &str, seed: u64, sandbox: Sandbox, shipped: &str) -> Account {
    let etc = root.join("etc/understory-sync");
    let state = root.join("var/lib/understory-sync").join(name);
    let credentials = root.join(format!("run/credentials/understory-sync@{name}.service"));
    let logs = root.join("var/log").join(name);
    for dir in [&etc, &state, &credentials, &logs] {
        fs::create_dir_all(dir).expect("directory");
    }
    fs::set_permissions(&state, fs::Permissions::from_mode(0o750)).expect("chmod");
    let config = etc.join(format!("{name}.toml"));
    write(&config, &job_config(shipped, &sandbox.base_url(), &state), 0o640);
    // `echo sandbox-secret | install -m 0600 /dev/stdin …`, then systemd's copy of it.
    write(&etc.join(format!("{name}.secret")), "sandbox-secret\n", 0o600);
    write(
        &credentials.join("understory-client-secret"),
        "sandbox-secret\n",
        0o400,
    );
    Account {
        name: name.to_owned(),
        seed,
        sandbox,
        config,
        credentials,
        database: state.join("understory.sqlite"),
        state,
        logs,
    }
}

impl Account {
    pub fn log(&self, round: usize) -> PathBuf {
        self.logs.join(format!("round-{round}.log"))
    }

    /// `ExecStart=`, with the environment systemd gives the unit and nothing of this process's.
    pub fn start(&self, round: usize) -> Child {
        let log = fs::File::create(self.log(round)).expect("log");
        Command::new(BIN)
            .args(["sync", "--config"])
            .arg(&self.config)
            .env_clear()
            .env("PATH", UNIT_PATH)
            .env("CREDENTIALS_DIRECTORY", &self.credentials)
            .env("STATE_DIRECTORY", &self.state)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("the release binary starts")
    }
}
