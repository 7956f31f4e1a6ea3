//! The README's "Install on a server", followed literally into a temporary root: its
//! `install` lines run as written (paths moved under the root, the group by number), the rest
//! of what systemd would do (the state directory, the credential, `User=`, `UMask=`) taken
//! from the shipped unit. Then the job runs as an unprivileged uid standing in for the
//! service, and a second uid in the group reads the database and the snapshot while a sync
//! runs. Users are numbers: no account is added to this machine. Needs root (CI is root).

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use understory_sandbox::config::FaultConfig;

use crate::cli::BIN;
use crate::support::*;

/// An analyst (added to the service's group) and a user outside it. The service's own user and
/// group are the ones `systemd-sysusers` creates in the temporary root.
const ANALYST: u32 = 64_102;
const OTHER: u32 = 64_103;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// `program args…` as `uid` (primary group `gid`, supplementary `groups`) under `umask`, the
/// way systemd starts the service: setpriv changes the ids, the shell the umask.
fn as_user(uid: u32, gid: u32, groups: &[u32], umask: &str, program: &str, args: &[&str]) -> Command {
    let groups = if groups.is_empty() {
        "--clear-groups".to_owned()
    } else {
        format!(
            "--groups={}",
            groups.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        )
    };
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg(groups)
        .args([
            "--",
            "sh",
            "-c",
            &format!("umask {umask}; exec \"$0\" \"$@\""),
            program,
        ])
        .args(args)
        .env("HOME", "/nonexistent")
        .env_remove("RUST_LOG")
        .env_remove("UNDERSTORY_CLIENT_SECRET")
        .env_remove("CREDENTIALS_DIRECTORY")
        .current_dir("/");
    c
}

/// The lines of the README's install block.
fn readme_install_block() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let section = readme
        .split("## Install on a server")
        .nth(1)
        .expect("the README has an install section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    block.lines().map(str::to_owned).collect()
}

/// The uid and gid `systemd-sysusers` gave `name` in `root`'s passwd and group files.
fn sysusers_ids(root: &Path, name: &str) -> (u32, u32) {
    let id = |file: &str, field: usize| -> u32 {
        std::fs::read_to_string(root.join(file))
            .unwrap()
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("systemd-sysusers created {name} in {file}"))
            .split(':')
            .nth(field)
            .unwrap()
            .parse()
            .unwrap()
    };
    (id("etc/passwd", 2), id("etc/group", 2))
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn owner_of(path: &Path) -> (u32, u32) {
    let m = std::fs::metadata(path).unwrap();
    (m.uid(), m.gid())
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The installed system: the root it is in, the config, the database and the snapshot.
struct Installed {
    _root: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    database: PathBuf,
    snapshot: PathBuf,
    credentials: PathBuf,
    /// The binary the package installed.
    bin: String,
    umask: String,
    /// The service's user and group, as systemd-sysusers created them in the root.
    uid: u32,
    gid: u32,
}

impl Installed {
    /// A command of the job as the service runs it: its user, group, umask and credential.
    fn job(&self, args: &[&str]) -> Command {
        let mut c = as_user(self.uid, self.gid, &[], &self.umask, &self.bin, args);
        c.env("CREDENTIALS_DIRECTORY", &self.credentials);
        c
    }

    fn analyst(&self, program: &str, args: &[&str]) -> Command {
        as_user(ANALYST, ANALYST, &[self.gid], "0022", program, args)
    }
}

/// The package `debian/build` made for this version, beside this test's binary.
fn package() -> Option<PathBuf> {
    let target = Path::new(BIN).parent()?.parent()?;
    let deb = target.join("debian").join(format!(
        "understory-sync_{}-1_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ));
    deb.exists().then_some(deb)
}

/// The package holds today's maintainer scripts and example config, not an older build's: a
/// stale package would test yesterday's install.
fn assert_current(deb: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    let files = dir.path().join("files");
    for (what, into) in [("-e", &control), ("-x", &files)] {
        let out = Command::new("dpkg-deb")
            .arg(what)
            .arg(deb)
            .arg(into)
            .output()
            .unwrap();
        assert!(out.status.success(), "dpkg-deb {what}: {}", text(&out));
    }
    let repo = Path::new(REPO);
    for (packaged, source) in [
        (control.join("postinst"), repo.join("debian/postinst")),
        (control.join("prerm"), repo.join("debian/prerm")),
        (control.join("postrm"), repo.join("debian/postrm")),
        (
            files.join("etc/understory-sync/understory-sync.toml"),
            repo.join("config/understory-sync.toml"),
        ),
        (
            files.join("usr/lib/systemd/system/understory-sync.service"),
            repo.join("systemd/understory-sync.service"),
        ),
    ] {
        assert!(
            std::fs::read(&packaged).unwrap() == std::fs::read(&source).unwrap(),
            "{} is older than {}: run debian/build again",
            deb.display(),
            source.display()
        );
    }
}

/// Follows the README's install block into a new root; the database path and the sandbox's
/// address are the operator's edit of the config.
fn install(deb: &Path, base_url: &str, token_url: &str) -> Installed {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    // What dpkg needs to install into a root of its own, and what systemd provides.
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "etc",
        "run/credentials",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        std::fs::write(root.join(f), "").unwrap();
    }
    let r = root.display().to_string();
    let mut seen = Vec::new();
    let mut edited = false;
    for line in readme_install_block() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The secret is typed at a prompt: here, the sandbox's.
        let line = line.replace("read -rs SECRET && ", "");
        let line = line.as_str();
        let step = line.strip_prefix("sudo ").unwrap_or(line);
        let word = step.split_whitespace().next().unwrap().to_owned();
        match word.as_str() {
            // The package, installed into the root by the real dpkg: its files, modes and
            // maintainer scripts (which run outside the root with DPKG_ROOT set; the
            // dependencies are the host's, so dpkg is told not to look for them there).
            "apt" => {
                assert!(
                    step.starts_with("apt install ./understory-sync_") && step.ends_with(".deb"),
                    "{line}"
                );
                let out = Command::new("dpkg")
                    .arg(format!("--root={r}"))
                    .args(["--force-script-chrootless", "--force-depends", "-i"])
                    .arg(deb)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "dpkg -i: {}", text(&out));
            }
            // The operator's edit, done below.
            "sudoedit" => {
                assert_eq!(step, "sudoedit /etc/understory-sync/understory-sync.toml");
                edited = true;
            }
            "install" => {
                assert!(step.ends_with("<<< \"$SECRET\""), "{line}");
                let cmd = step
                    .replace(" /etc/", &format!(" {r}/etc/"))
                    .replace("\"$SECRET\"", "'sandbox-secret'");
                let out = Command::new("bash")
                    .args(["-c", &cmd])
                    .current_dir(REPO)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{cmd}: {}", text(&out));
            }
            // Done by hand below, from the unit (no unit is started here).
            "systemctl" | "usermod" | "sqlite3" | "understory-sync" => {}
            _ => panic!("the install test does not know how to follow the README's line: {line}"),
        }
        seen.push(word);
    }
    for needed in [
        "apt",
        "sudoedit",
        "install",
        "usermod",
        "sqlite3",
        "understory-sync",
    ] {
        assert!(
            seen.iter().any(|w| w == needed),
            "the README's install block runs {needed}"
        );
    }
    assert!(edited);
    // The secret: root's alone.
    let secret = root.join("etc/understory-sync/client-secret");
    assert_eq!((mode_of(&secret), owner_of(&secret)), (0o600, (0, 0)));
    // The package's postinst ran systemd-sysusers.
    let (uid, gid) = sysusers_ids(&root, "understory-sync");

    // systemd-sysusers: the user the units run as is the one the sysusers file creates.
    let sysusers = std::fs::read_to_string(root.join("usr/lib/sysusers.d/understory-sync.conf")).unwrap();
    let unit = std::fs::read_to_string(root.join("usr/lib/systemd/system/understory-sync.service")).unwrap();
    let user = unit_value(&unit, "User");
    assert!(
        sysusers.lines().any(|l| l.starts_with(&format!("u {user} "))),
        "{sysusers}"
    );
    assert_eq!(unit_value(&unit, "Group"), user);
    let usermod = readme_install_block()
        .into_iter()
        .find(|l| l.contains("usermod"))
        .unwrap();
    assert!(usermod.contains(&format!("-aG {user} ")), "{usermod}");

    // The operator's edit: "auth.client_id, and database = …" (and here, the sandbox).
    let config = root.join("etc/understory-sync/understory-sync.toml");
    let state = root.join("var/lib").join(unit_value(&unit, "StateDirectory"));
    let database = state.join("understory.sqlite");
    let snapshot = state.join("understory.snapshot.sqlite");
    let example = std::fs::read_to_string(&config).unwrap();
    let edits = [
        (
            "database = \"/var/lib/understory-sync/understory.sqlite\"",
            format!("database = \"{}\"", database.display()),
        ),
        ("client_id = \"\"", "client_id = \"sandbox-client\"".to_owned()),
        (
            "token_url = \"https://api.auth.understory.io/oauth2/token\"",
            format!("token_url = \"{token_url}\""),
        ),
        (
            "base_url = \"https://api.understory.io\"",
            format!("base_url = \"{base_url}\""),
        ),
        (
            "rate_limited_wait_secs = 60",
            "rate_limited_wait_secs = 1".to_owned(),
        ),
        (
            "max_requests_per_second = 50",
            "max_requests_per_second = 400".to_owned(),
        ),
        ("progress_secs = 30", "progress_secs = 1".to_owned()),
        (
            "# path = \"/var/lib/understory-sync/understory.snapshot.sqlite\"",
            format!("path = \"{}\"", snapshot.display()),
        ),
    ];
    let mut edited = example.clone();
    for (from, to) in &edits {
        assert!(edited.contains(from), "the example config has `{from}`");
        edited = edited.replacen(from, to, 1);
    }
    // Written in place, as an editor would: owner and mode stay as installed.
    std::fs::write(&config, edited).unwrap();

    // What systemd does when it starts the unit: the state directory, owned by the service
    // with the unit's mode, and the credential, readable by the service alone.
    std::fs::create_dir_all(&state).unwrap();
    let state_mode = u32::from_str_radix(&unit_value(&unit, "StateDirectoryMode"), 8).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(state_mode)).unwrap();
    std::os::unix::fs::chown(&state, Some(uid), Some(gid)).unwrap();
    let credentials = root.join("run/credentials/understory-sync.service");
    std::fs::create_dir(&credentials).unwrap();
    let (name, source) = unit_value(&unit, "LoadCredential")
        .split_once(':')
        .map(|(n, s)| (n.to_owned(), s.to_owned()))
        .unwrap();
    let source = root.join(source.trim_start_matches('/'));
    std::fs::copy(&source, credentials.join(&name)).unwrap();
    for (p, mode) in [(credentials.clone(), 0o500), (credentials.join(&name), 0o400)] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    }
    let bin = root.join("usr/bin/understory-sync").display().to_string();
    Installed {
        _root: dir,
        root,
        config,
        database,
        snapshot,
        credentials,
        bin,
        umask: unit_value(&unit, "UMask"),
        uid,
        gid,
    }
}

/// A sync as the service, during which the analyst reads `path` over and over: it succeeds,
/// at least one read landed while it was still running, and no read failed. Returns the
/// sync's log (written to a file, so a full pipe never stalls the job).
async fn sync_while_the_analyst_reads(i: &Installed, config: &str, path: &Path) -> String {
    let log = i.root.join("sync.log");
    let mut sync = i
        .job(&["sync", "--config", config])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let p = path.display().to_string();
    let mut during = 0;
    let mut failed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while sync.try_wait().unwrap().is_none() && Instant::now() < deadline {
        let out = i
            .analyst("sqlite3", &["-readonly", &p, "SELECT count(*) FROM orders"])
            .output()
            .unwrap();
        if !out.status.success() {
            failed.push(text(&out));
        } else if sync.try_wait().unwrap().is_none() {
            during += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = sync.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(during > 0, "the analyst read {p} while the sync ran");
    assert!(failed.is_empty(), "every read of {p} succeeded: {failed:?}");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_install_works_for_the_service_and_for_analysts() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: the install test switches users and needs root (CI runs as root)");
        return;
    }
    let Some(deb) = package() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no package to install: .ci/run builds it with debian/build before the tests"
        );
        eprintln!("skipped: the install test installs the package; build it first with debian/build");
        return;
    };
    assert_current(&deb);
    let mut sc = small();
    // Slow enough that readers meet the run in progress.
    sc.faults = FaultConfig {
        slow: 1.0,
        slow_ms: 15,
        ..FaultConfig::default()
    };
    let sb = start(sc).await;
    let i = install(&deb, &sb.base_url(), &sb.token_url());
    let config = i.config.display().to_string();
    let db = i.database.display().to_string();

    // As installed: the config is root's, readable by the group only.
    let etc = i.config.parent().unwrap();
    let (service, group) = (i.uid, i.gid);
    assert_eq!((mode_of(etc), owner_of(etc)), (0o750, (0, group)));
    assert_eq!((mode_of(&i.config), owner_of(&i.config)), (0o640, (0, group)));

    // Someone outside the group is told it is a permission problem, with the user's id.
    let out = as_user(OTHER, OTHER, &[], "0022", &i.bin, &["check", "--config", &config])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "{}: permission denied for uid {OTHER}",
            i.config.display()
        )),
        "{}",
        text(&out)
    );

    // The service: check, then a sync during which the analyst reads and asks for status.
    let out = i.job(&["check", "--config", &config]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let checked = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        checked.contains(&format!("ok: database {db} is writable and migrated")),
        "{checked}"
    );
    assert!(
        checked.lines().all(|l| l.starts_with("ok: ")) && out.stderr.is_empty(),
        "check prints its ok: lines and nothing else: {}",
        text(&out)
    );

    sync_while_the_analyst_reads(&i, &config, &i.database).await;

    // What the service left: group-readable, nobody else's, all owned by the service.
    let state = i.database.parent().unwrap();
    assert_eq!((mode_of(state), owner_of(state)), (0o750, (service, group)));
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{db}{suffix}"));
        assert_eq!(
            (mode_of(&p), owner_of(&p)),
            (0o640, (service, group)),
            "{}",
            p.display()
        );
    }
    assert_eq!(
        (mode_of(&i.snapshot), owner_of(&i.snapshot)),
        (0o640, (service, group))
    );

    // After the run, and after a command that closes its connection cleanly (as `check` and
    // each sync of `run` do, which is when SQLite would delete the `-wal` and `-shm` files an
    // analyst cannot create): the analyst reads the live file and the snapshot, and cannot
    // write.
    let out = i.job(&["check", "--config", &config]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let orders = |path: &Path| {
        let out = i
            .analyst(
                "sqlite3",
                &[
                    "-readonly",
                    &path.display().to_string(),
                    "SELECT count(*) FROM orders",
                ],
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", path.display(), text(&out));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let truth = sb.truth().rows("orders").len() as u64;
    assert_eq!(orders(&i.database), truth);
    assert_eq!(orders(&i.snapshot), truth);
    let out = i
        .analyst("sqlite3", &[&db, "DELETE FROM orders"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an analyst cannot change the data");
    let out = as_user(
        OTHER,
        OTHER,
        &[],
        "0022",
        "sqlite3",
        &["-readonly", &db, "SELECT 1"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success(), "a user outside the group cannot read it");
    let out = as_user(OTHER, OTHER, &[], "0022", &i.bin, &["status", "--database", &db])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("permission denied for uid {OTHER}")),
        "said as a permission problem, not as a missing file: {}",
        text(&out)
    );

    // status: the service with its config, the analyst with the database.
    let out = i.job(&["status", "--config", &config]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("succeeded"),
        "{}",
        text(&out)
    );
    let out = i
        .analyst(&i.bin, &["status", "--database", &db])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // A second sync with changes: the analyst reads the snapshot (the whole old copy) while
    // it runs.
    sb.mutate(40);
    let journal = sync_while_the_analyst_reads(&i, &config, &i.snapshot).await;
    assert_eq!(orders(&i.snapshot), sb.truth().rows("orders").len() as u64);
    assert!(journal.contains("snapshot published"), "{journal}");
    assert!(i.root.join("etc").exists());
}
