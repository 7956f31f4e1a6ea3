//! The path past one server: the container image and the Kubernetes manifests.
//!
//! No container runtime runs here, so the image is tested as what it is: a root filesystem
//! (`contrib/container/rootfs.sh`'s archive, which `Containerfile` adds to an empty image) and a
//! process started in it with the Containerfile's user, environment, entrypoint and command.
//! `unshare` gives the process its own mount and pid namespaces, as a runtime would: the root
//! is bound read-only, only the state volume and `/tmp` are writable, and the job is PID 1,
//! where a signal without a handler would be ignored. The config and the secret are laid out as
//! kubelet mounts a ConfigMap and a Secret, taken from `contrib/kubernetes/acme.yaml`. Needs root
//! (CI is root); as another user it prints that it skipped.
//!
//! The manifests are checked against Kubernetes' own schemas (`kubernetes-validate`, which
//! ships them and needs no cluster) and, line by line, against the systemd units whose
//! hardening, memory ceiling and timeouts they carry over.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use understory_sandbox::Sandbox;
use understory_sandbox::config::FaultConfig;

use crate::cli::BIN;
use crate::support::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The schema versions the manifests must pass: the oldest Kubernetes they are written for
/// (`podReplacementPolicy` is on by default from 1.29) and the newest the pinned
/// kubernetes-validate knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

fn repo(path: &str) -> PathBuf {
    Path::new(REPO).join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---- the manifests, read the way they are written (block style, one key a line) -------------

/// The YAML documents of a file.
fn documents(text: &str) -> Vec<String> {
    text.split("\n---\n").map(str::to_owned).collect()
}

/// The values of every `key: value` line of `doc` (list items too), unquoted; comments skipped.
fn values(doc: &str, key: &str) -> Vec<String> {
    doc.lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let v = l.trim_start_matches("- ").strip_prefix(key)?.strip_prefix(':')?;
            Some(v.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// The one value of `key` in `doc`.
fn value(doc: &str, key: &str) -> String {
    match values(doc, key).as_slice() {
        [v] => v.clone(),
        other => panic!("`{key}` once in the document, found {other:?}:\n{doc}"),
    }
}

fn kind(doc: &str) -> String {
    values(doc, "kind").first().cloned().unwrap_or_default()
}

/// The list item `- name: <name>` of `doc` and the value of `key` on the line after it: an
/// env entry's `value`, a volume mount's `mountPath`.
fn item(doc: &str, name: &str, key: &str) -> String {
    let lines: Vec<&str> = doc.lines().map(str::trim).collect();
    lines
        .windows(2)
        .find_map(|w| {
            (w[0] == format!("- name: {name}"))
                .then(|| w[1].strip_prefix(key)?.strip_prefix(':'))
                .flatten()
        })
        .unwrap_or_else(|| panic!("an item `- name: {name}` followed by `{key}:`"))
        .trim()
        .to_owned()
}

/// The text of the block scalar `key: |` in `doc`, without its indentation.
fn block(doc: &str, key: &str) -> String {
    let mut lines = doc.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let head = lines.next().unwrap_or_else(|| panic!("a block `{key}: |`"));
    let outer = head.len() - head.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > outer)
        .collect();
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| l.get(indent..).unwrap_or("").to_owned() + "\n")
        .collect()
}

/// The manifests of Kubernetes objects (every file but kustomize's own).
fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("contrib/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
}

/// Each account's file: the CronJob, and the rest of its file (ConfigMap, claim).
fn accounts() -> Vec<(PathBuf, String, Vec<String>)> {
    let mut out = Vec::new();
    for file in manifests() {
        let docs = documents(&read(&file));
        if let Some(cron) = docs.iter().find(|d| kind(d) == "CronJob") {
            out.push((file, cron.clone(), docs));
        }
    }
    assert!(out.len() >= 2, "two example accounts: {out:?}");
    out
}

/// `Key=value` of a shipped unit file.
fn shipped_unit_value(unit: &str, key: &str) -> String {
    unit_value(&read(&repo(&format!("systemd/{unit}"))), key)
}

/// A systemd time span (`30s`, `6h 10min`) in seconds.
fn seconds(span: &str) -> u64 {
    span.split_whitespace()
        .map(|part| {
            let digits = part.trim_end_matches(char::is_alphabetic);
            let n: u64 = digits.parse().unwrap_or_else(|_| panic!("a time span: {span}"));
            n * match &part[digits.len()..] {
                "h" => 3600,
                "min" => 60,
                "s" | "" => 1,
                unit => panic!("a time unit systemd writes: {unit}"),
            }
        })
        .sum()
}

// ---- the image, as the Containerfile describes it -------------------------------------------

/// What the Containerfile gives a container: its user, environment and command line.
struct Image {
    user: String,
    env: Vec<(String, String)>,
    argv: Vec<String>,
}

impl Image {
    fn read() -> Image {
        let text = read(&repo("contrib/container/Containerfile"));
        let instruction = |name: &str| -> Vec<String> {
            text.lines()
                .filter_map(|l| l.strip_prefix(&format!("{name} ")))
                .map(str::to_owned)
                .collect()
        };
        let json_array = |name: &str| -> Vec<String> {
            let [line] = instruction(name).try_into().expect("the instruction once");
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{name} in exec form: {e}"))
        };
        let [user] = instruction("USER").try_into().expect("USER once");
        let env = instruction("ENV")
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("ENV KEY=value");
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let mut argv = json_array("ENTRYPOINT");
        argv.extend(json_array("CMD"));
        Image { user, env, argv }
    }

    /// The file the command's `--config` names.
    fn config_path(&self) -> String {
        let at = self
            .argv
            .iter()
            .position(|a| a == "--config")
            .expect("CMD names --config");
        self.argv[at + 1].clone()
    }
}

// ---- the manifests ---------------------------------------------------------------------------

#[test]
fn every_manifest_passes_the_kubernetes_schemas() {
    if Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "kubernetes-validate is missing: .ci/run installs it (pip install kubernetes-validate)"
        );
        eprintln!(
            "skipped: kubernetes-validate is not installed (python3 -m pip install kubernetes-validate)"
        );
        return;
    }
    let files = manifests();
    assert!(files.len() >= 3, "{files:?}");
    for version in KUBERNETES_VERSIONS {
        // --strict: a key the schema does not know (a typo) is an error, not ignored;
        // --quiet: only warnings and failures are printed, and a warning fails here too
        // (an unknown kind or apiVersion is only a warning to the tool).
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "--kubernetes-version", version])
            .args(&files)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.trim().is_empty(),
            "kubernetes {version}: {text}"
        );
    }
}

#[test]
fn each_account_syncs_alone_hardened_as_the_units_on_its_own_volume() {
    let image = Image::read();
    let unit = "understory-sync@.service";
    let max_run_secs: u64 = toml::from_str::<toml::Table>(&read(&repo("config/understory-sync.toml")))
        .unwrap()["sync"]["max_run_secs"]
        .as_integer()
        .unwrap()
        .try_into()
        .unwrap();
    let mut claims = Vec::new();
    let mut minutes = Vec::new();
    for (file, cron, docs) in accounts() {
        let f = file.display();
        let one = |key: &str| value(&cron, key);
        assert_eq!(one("concurrencyPolicy"), "Forbid", "{f}");
        assert!(one("startingDeadlineSeconds").parse::<u64>().is_ok(), "{f}");
        assert!(one("successfulJobsHistoryLimit").parse::<u64>().is_ok(), "{f}");
        assert!(one("failedJobsHistoryLimit").parse::<u64>().is_ok(), "{f}");
        assert_eq!(one("timeZone"), "Etc/UTC", "{f}: the schedule reads in UTC");
        assert_eq!(one("restartPolicy"), "Never", "{f}");
        // Pod and container alike: never root, no privilege, no capability, nothing written
        // outside the volumes, the runtime's syscall filter (the units' hardening).
        for (key, want) in [
            ("runAsNonRoot", "true"),
            ("runAsUser", "65532"),
            ("runAsGroup", "65532"),
        ] {
            assert_eq!(values(&cron, key), [want, want], "{f}: {key}, pod and container");
        }
        assert_eq!(image.user, "65532:65532", "the image's user is the pods'");
        assert_eq!(one("readOnlyRootFilesystem"), "true", "{f}");
        assert_eq!(one("allowPrivilegeEscalation"), "false", "{f}");
        assert_eq!(one("privileged"), "false", "{f}");
        assert_eq!(one("drop"), "[\"ALL\"]", "{f}");
        assert_eq!(
            values(&cron, "type")
                .iter()
                .filter(|t| *t == "RuntimeDefault")
                .count(),
            2,
            "{f}"
        );
        assert_eq!(one("automountServiceAccountToken"), "false", "{f}");
        // The units' numbers.
        assert_eq!(
            one("terminationGracePeriodSeconds").parse::<u64>().unwrap(),
            seconds(&shipped_unit_value(unit, "TimeoutStopSec")),
            "{f}: SIGTERM's grace is the unit's TimeoutStopSec"
        );
        let deadline: u64 = one("activeDeadlineSeconds").parse().unwrap();
        assert_eq!(
            deadline,
            seconds(&shipped_unit_value(unit, "TimeoutStartSec")),
            "{f}"
        );
        assert!(
            deadline > max_run_secs,
            "{f}: the run stops itself before the deadline"
        );
        assert_eq!(
            format!("{}i", shipped_unit_value(unit, "MemoryMax")),
            values(&cron, "memory").last().cloned().unwrap(),
            "{f}: the memory limit is the unit's MemoryMax= (the last `memory:` is the limit)"
        );
        // Exit 7 is the units' SuccessExitStatus: interrupted after a commit, not a failure.
        assert_eq!(shipped_unit_value(unit, "SuccessExitStatus"), "7");
        assert_eq!(one("values"), "[7]", "{f}: the pod failure policy names exit 7");
        assert_eq!(values(&cron, "action"), ["Ignore", "Ignore"], "{f}");
        assert_eq!(one("podReplacementPolicy"), "Failed", "{f}");
        // The image's command reads the ConfigMap's key where the CronJob mounts it, and the
        // secret file the job is told of is the Secret's key where it is mounted.
        let config_map = docs.iter().find(|d| kind(d) == "ConfigMap").expect("a ConfigMap");
        let config_dir = item(&cron, "config", "mountPath");
        assert_eq!(
            image.config_path(),
            format!("{config_dir}/understory-sync.toml"),
            "{f}"
        );
        assert!(!block(config_map, "understory-sync.toml").is_empty(), "{f}");
        let secret_dir = item(&cron, "secret", "mountPath");
        assert_eq!(
            item(&cron, "UNDERSTORY_SYNC__AUTH__CLIENT_SECRET_FILE", "value"),
            format!("{secret_dir}/client-secret"),
            "{f}"
        );
        assert_eq!(
            item(&cron, "tmp", "mountPath"),
            "/tmp",
            "{f}: SQLite's sort files"
        );
        // Its own volume, which one node mounts at a time.
        let claim = value(&cron, "claimName");
        let pvc = docs
            .iter()
            .find(|d| kind(d) == "PersistentVolumeClaim" && value(d, "name") == claim)
            .unwrap_or_else(|| panic!("{f}: the claim {claim} is in the account's file"));
        assert_eq!(value(pvc, "accessModes"), "[\"ReadWriteOnce\"]", "{f}");
        assert_eq!(
            item(&cron, "state", "mountPath"),
            "/var/lib/understory-sync",
            "{f}"
        );
        claims.push(claim);
        minutes.push(value(&cron, "schedule").split(' ').next().unwrap().to_owned());
    }
    let mut distinct = claims.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        claims.len(),
        "no two accounts share a volume: {claims:?}"
    );
    let mut distinct = minutes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        minutes.len(),
        "each account has its own minutes: {minutes:?}"
    );

    // kustomize applies every account and never the example Secret's placeholder.
    let kustomization = read(&repo("contrib/kubernetes/kustomization.yaml"));
    for (file, _, _) in accounts() {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            kustomization.contains(&format!("- {name}")),
            "{name} in kustomization.yaml"
        );
    }
    assert!(!kustomization.contains("- secret.example.yaml"));
    let example = read(&repo("contrib/kubernetes/secret.example.yaml"));
    let placeholders = values(&example, "client-secret");
    assert!(
        placeholders.len() >= 2 && placeholders.iter().all(|v| v.starts_with("REPLACE-ME")),
        "{placeholders:?}"
    );
}

// ---- the image, run ----------------------------------------------------------------------------

/// The root filesystem the image is made of, unpacked: built by `rootfs.sh` from the test
/// build's binary, unpacked with the owners the archive records (as `ADD` does).
fn unpack_image(dir: &Path) -> PathBuf {
    let out = dir.join("context");
    let built = Command::new("bash")
        .arg(repo("contrib/container/rootfs.sh"))
        .arg(&out)
        .env("UNDERSTORY_SYNC_BINARY", BIN)
        .current_dir(REPO)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "rootfs.sh: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let root = dir.join("root");
    std::fs::create_dir(&root).unwrap();
    let unpacked = Command::new("tar")
        .args(["-xpf"])
        .arg(out.join("rootfs.tar"))
        .args(["--numeric-owner", "-C"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(unpacked.success());
    root
}

/// Puts `file` with `text` into `dir` as kubelet mounts a ConfigMap's or Secret's key: the
/// file is a link through `..data`, a link to a timestamped directory.
fn mount_like_kubelet(dir: &Path, file: &str, text: &str, mode: u32, gid: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    let stamp = "..2026_12_07_10_00_00.000000001";
    std::fs::create_dir_all(dir.join(stamp)).unwrap();
    let real = dir.join(stamp).join(file);
    std::fs::write(&real, text).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::chown(&real, Some(0), Some(gid)).unwrap();
    std::os::unix::fs::symlink(stamp, dir.join("..data")).unwrap();
    std::os::unix::fs::symlink(format!("..data/{file}"), dir.join(file)).unwrap();
}

/// Mounts as a runtime would, then starts the image's command as its user: a private mount
/// namespace where the root is read-only and only the state directory (and, with `tmp`, /tmp)
/// are writable binds, and a pid namespace where the job is PID 1.
const RUNTIME: &str = r#"
set -eu
root=$1; tmp=$2; user=$3; shift 3
mount --bind "$root" "$root"
mount --bind "$root/var/lib/understory-sync" "$root/var/lib/understory-sync"
if [ "$tmp" = yes ]; then mount --bind "$root/tmp" "$root/tmp"; fi
mount -o remount,bind,ro "$root"
if touch "$root/etc/written" 2>/dev/null; then echo "the root is writable" >&2; exit 99; fi
exec chroot --userspec="$user" "$root" "$@"
"#;

/// The image's command in `root`, with the image's environment and `env`, its log in `log`.
fn start_in_image(root: &Path, image: &Image, env: &[(String, String)], tmp: bool, log: &Path) -> Child {
    Command::new("unshare")
        .args([
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            RUNTIME,
            "sh",
        ])
        .arg(root)
        .arg(if tmp { "yes" } else { "no" })
        .arg(&image.user)
        .args(&image.argv)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(image.env.iter().cloned())
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Waits for `child` to exit, at most two minutes; its exit code.
async fn exit_code(child: &mut Child, log: &Path) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the job did not exit within two minutes: {}", read(log));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The environment a test adds to the account's: the sandbox instead of Understory, named
/// `localhost` so that the image's resolver (nsswitch, /etc/hosts) is used, and a pace for
/// tests.
fn towards(sb: &Sandbox) -> Vec<(String, String)> {
    let local = |url: String| url.replace("127.0.0.1", "localhost");
    [
        ("UNDERSTORY_SYNC__AUTH__TOKEN_URL", local(sb.token_url())),
        ("UNDERSTORY_SYNC__API__BASE_URL", local(sb.base_url())),
        ("UNDERSTORY_SYNC__AUTH__CLIENT_ID", "sandbox-client".into()),
        ("UNDERSTORY_SYNC__API__REQUESTS_PER_SECOND", "5000".into()),
        ("UNDERSTORY_SYNC__API__MAX_REQUESTS_PER_SECOND", "5000".into()),
        ("UNDERSTORY_SYNC__API__BURST", "500".into()),
        ("UNDERSTORY_SYNC__API__MAX_CONCURRENT", "8".into()),
        ("UNDERSTORY_SYNC__RETRY__INITIAL_BACKOFF_MS", "5".into()),
        ("UNDERSTORY_SYNC__RETRY__MAX_BACKOFF_MS", "50".into()),
        ("UNDERSTORY_SYNC__RETRY__RATE_LIMITED_WAIT_SECS", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn statuses(db: &Path) -> Vec<String> {
    open(db)
        .prepare("SELECT status FROM sync_runs ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_syncs_as_65532_on_a_read_only_root_and_stops_cleanly_as_pid_1() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    if !rustix::process::geteuid().is_root() {
        eprintln!(
            "skipped: the container test mounts, chroots and switches users, and needs root (CI runs as root)"
        );
        return;
    }
    let image = Image::read();
    let (uid, gid): (u32, u32) = {
        let (u, g) = image.user.split_once(':').expect("USER uid:gid");
        (u.parse().unwrap(), g.parse().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let root = unpack_image(dir.path());
    let state = root.join("var/lib/understory-sync");
    let meta = std::fs::metadata(&state).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777),
        (uid, gid, 0o750),
        "the image's state directory is the job's"
    );

    // What the cluster adds: acme's ConfigMap and Secret where its CronJob mounts them (the
    // Secret group-readable through fsGroup), and the /etc/hosts every runtime mounts.
    let (_, cron, docs) = accounts()
        .into_iter()
        .find(|(f, _, _)| f.ends_with("acme.yaml"))
        .unwrap();
    let config_map = docs.iter().find(|d| kind(d) == "ConfigMap").unwrap();
    let config_text = block(config_map, "understory-sync.toml");
    let config = Path::new(&image.config_path()).to_owned();
    mount_like_kubelet(
        &root.join(config.parent().unwrap().strip_prefix("/").unwrap()),
        config.file_name().unwrap().to_str().unwrap(),
        &config_text,
        0o644,
        0,
    );
    let secret_var = "UNDERSTORY_SYNC__AUTH__CLIENT_SECRET_FILE";
    let secret = PathBuf::from(item(&cron, secret_var, "value"));
    mount_like_kubelet(
        &root.join(secret.parent().unwrap().strip_prefix("/").unwrap()),
        secret.file_name().unwrap().to_str().unwrap(),
        "sandbox-secret\n",
        0o440,
        gid,
    );
    std::fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    let database = toml::from_str::<toml::Table>(&config_text).unwrap()["database"]
        .as_str()
        .unwrap()
        .to_owned();
    let db = root.join(database.strip_prefix('/').expect("an absolute database path"));
    assert!(db.starts_with(&state), "the database is on the state volume");

    // A first run slow enough to be stopped half-way, the way a drain or the deadline stops a
    // pod: SIGTERM to PID 1 from outside its namespace. It commits, records the stop, exits 7.
    let mut sc = small();
    sc.faults = FaultConfig {
        slow: 1.0,
        slow_ms: 20,
        ..FaultConfig::default()
    };
    let sb = start(sc).await;
    let mut env = vec![(secret_var.to_owned(), secret.display().to_string())];
    env.extend(towards(&sb));
    let log = dir.path().join("first.log");
    let mut job = start_in_image(&root, &image, &env, true, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    while sb.requests() < 40 && job.try_wait().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(job.try_wait().unwrap().is_none(), "still running: {}", read(&log));
    let children = format!("/proc/{0}/task/{0}/children", job.id());
    let pid1 = read(Path::new(&children)).trim().to_owned();
    assert_eq!(
        read(Path::new(&format!("/proc/{pid1}/comm"))).trim(),
        "understory-sync",
        "the job itself is the namespace's first process"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid1}/status")).unwrap();
    assert!(
        status.contains(&format!("\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")),
        "{status}"
    );
    assert!(status.contains(&format!("\nGroups:\t{gid} \n")), "{status}");
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid1])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(exit_code(&mut job, &log).await, Some(7), "{}", read(&log));

    // The next run, the API quick again: resumes and completes.
    sb.set_faults(FaultConfig::default());
    let log = dir.path().join("second.log");
    let mut job = start_in_image(&root, &image, &env, true, &log);
    assert_eq!(exit_code(&mut job, &log).await, Some(0), "{}", read(&log));
    assert_eq!(statuses(&db), ["interrupted", "succeeded"]);
    let meta = std::fs::metadata(&db).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o777),
        (uid, gid, 0o640)
    );
    assert_converged(&db, &sb);
    assert!(!root.join("etc/written").exists());

    // A first load large enough that SQLite's index builds sort in temporary files: with /tmp
    // writable (the CronJob's emptyDir) it completes; on the read-only root alone it fails.
    // That is why the image has a /tmp and the CronJob mounts one: drop both only when this
    // stops failing.
    let mut sc = small();
    sc.data.bookings = 10_000;
    let big = start(sc).await;
    let mut env = vec![(secret_var.to_owned(), secret.display().to_string())];
    env.extend(towards(&big));
    for stream in [
        "orders",
        "order_line_items",
        "order_transactions",
        "order_refunds",
        "marketing_consents",
    ] {
        env.push((
            format!("UNDERSTORY_SYNC__STREAMS__{}", stream.to_uppercase()),
            "false".into(),
        ));
    }
    for (tmp, name, want) in [(false, "no-tmp", 8), (true, "with-tmp", 0)] {
        let db = format!("/var/lib/understory-sync/{name}.sqlite");
        let mut env = env.clone();
        env.push(("UNDERSTORY_SYNC__DATABASE".into(), db.clone()));
        let log = dir.path().join(format!("{name}.log"));
        let mut job = start_in_image(&root, &image, &env, tmp, &log);
        assert_eq!(
            exit_code(&mut job, &log).await,
            Some(want),
            "/tmp writable: {tmp}: {}",
            read(&log)
        );
        if tmp {
            assert_bookings_converged(&root.join(db.trim_start_matches('/')), &big);
        }
    }
}
