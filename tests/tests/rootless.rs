//! Without root, for real: a system user created here runs `cargo-sandbox exec` with a user
//! namespace and cgroups root delegated to it (per controller on v1; a subtree with the runner in
//! a leaf on v2), and without delegation (a clear error, or `--allow-degraded` that says so).

use e2e::*;
use std::path::PathBuf;
use std::process::{Command, Output};

const USER: &str = "cargo-sandbox-e2e";

fn ensure_user() -> (u32, u32) {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, USER]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "creating the test user {USER} needs useradd"
        );
    }
    (id("-u").unwrap(), id("-g").unwrap())
}

/// Cgroups created by root under the test's own cgroups and handed to the user; removed on drop.
struct Delegation {
    dirs: Vec<PathBuf>,
    /// On v2 the runner must start inside the subtree: this leaf.
    runner_leaf: Option<PathBuf>,
}

impl Delegation {
    fn new(uid: u32, gid: u32) -> Delegation {
        let name = token("rootless");
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let v2_only = !own.lines().any(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "memory"))
        });
        let mut dirs = Vec::new();
        let mut runner_leaf = None;
        if v2_only {
            // Under the empty cgroup this run was given for sandboxes, when there is one (the
            // test's own cgroup holds processes, so it cannot delegate controllers); else under
            // the test's own cgroup.
            let base = match std::env::var_os("CARGO_SANDBOX_CGROUP_PARENT") {
                Some(parent) => {
                    let parent = PathBuf::from(parent);
                    let _ =
                        std::fs::write(parent.join("cgroup.subtree_control"), "+memory +pids +cpu");
                    parent
                }
                None => {
                    let path = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
                    PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'))
                }
            };
            let dir = base.join(&name);
            let leaf = dir.join("runner");
            std::fs::create_dir_all(&leaf).unwrap();
            dirs.extend([leaf.clone(), dir]);
            runner_leaf = Some(leaf);
        } else {
            for controller in ["memory", "pids", "cpuacct", "cpu"] {
                let path = own
                    .lines()
                    .find_map(|l| {
                        let mut parts = l.splitn(3, ':');
                        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                        controllers
                            .split(',')
                            .any(|c| c == controller)
                            .then(|| path.to_owned())
                    })
                    .unwrap();
                let dir = PathBuf::from("/sys/fs/cgroup")
                    .join(controller)
                    .join(path.trim_start_matches('/'))
                    .join(&name);
                std::fs::create_dir_all(&dir).unwrap();
                dirs.push(dir);
            }
        }
        for dir in &dirs {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{uid}:{gid}"))
                .arg(dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
        Delegation { dirs, runner_leaf }
    }

    /// The `--cgroup-parent` value (the v2 subtree, not its runner leaf).
    fn parent(&self) -> String {
        let parents: Vec<String> = match &self.runner_leaf {
            Some(leaf) => vec![leaf.parent().unwrap().display().to_string()],
            None => self.dirs.iter().map(|d| d.display().to_string()).collect(),
        };
        parents.join(":")
    }
}

impl Drop for Delegation {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Runs cargo-sandbox as the test user (inside the delegated leaf on v2).
fn as_user(delegation: Option<&Delegation>, uid: u32, gid: u32, args: &[&str]) -> Output {
    let sandbox = cargo_sandbox().display().to_string();
    let mut script = String::new();
    if let Some(leaf) = delegation.and_then(|d| d.runner_leaf.as_ref()) {
        script.push_str(&format!("echo $$ > {}/cgroup.procs && ", leaf.display()));
    }
    let parent = delegation
        .map(|d| format!("CARGO_SANDBOX_CGROUP_PARENT={}", d.parent()))
        .unwrap_or_default();
    script.push_str(&format!(
        "exec setpriv --reuid {uid} --regid {gid} --clear-groups env -i PATH=/usr/bin:/bin HOME=/ {parent} \"$@\""
    ));
    Command::new("sh")
        .args(["-c", &script, "sh", &sandbox])
        .args(args)
        .current_dir("/")
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("JSON on stdout: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn an_unprivileged_user_gets_namespaces_and_delegated_caps() {
    skip_unless_privileged!();
    let (uid, gid) = ensure_user();
    let delegation = Delegation::new(uid, gid);
    let probe = probe().display().to_string();

    let who = succeeded(as_user(
        Some(&delegation),
        uid,
        gid,
        &["exec", "--json", "--", "sh", "-c", "id -u; hostname"],
    ));
    assert!(
        String::from_utf8_lossy(&who.stderr).starts_with("0\nlocalhost\n"),
        "root inside: {}",
        String::from_utf8_lossy(&who.stderr)
    );
    let result = json(&who);
    assert_eq!(result["result"]["protections"]["namespaces"][0], "user");
    assert_eq!(
        result["result"]["protections"]["degraded"],
        serde_json::json!([])
    );

    let hog = as_user(
        Some(&delegation),
        uid,
        gid,
        &["exec", "--json", "--memory", "64M", "--", &probe, "hog"],
    );
    let result = json(&hog);
    assert_eq!(
        hog.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&hog.stderr)
    );
    assert!(result["result"]["usage"]["oom_kills"].as_u64().unwrap() >= 1);

    let token = token("rootless-bomb");
    let bomb = as_user(
        Some(&delegation),
        uid,
        gid,
        &[
            "exec", "--json", "--pids", "16", "--", &probe, "forkbomb", &token,
        ],
    );
    let result = json(&bomb);
    assert!(
        result["result"]["usage"]["forks_refused"].as_u64().unwrap() > 0,
        "{result}"
    );
    assert_no_survivors(
        &token,
        std::time::Duration::from_secs(2),
        "the bomb's children are gone",
    );

    for dir in &delegation.dirs {
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("cargo-sandbox.")
            })
            .collect();
        assert!(left.is_empty(), "run directories left in {}", dir.display());
    }
}

#[test]
fn without_delegation_it_fails_clearly_or_runs_degraded_when_asked() {
    skip_unless_privileged!();
    let (uid, gid) = ensure_user();
    let refused = as_user(None, uid, gid, &["exec", "--", "true"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("--cgroup-parent")
            && stderr.contains("--allow-degraded")
            && stderr.contains("cargo sandbox doctor"),
        "{stderr}"
    );

    let degraded = succeeded(as_user(
        None,
        uid,
        gid,
        &[
            "exec",
            "--json",
            "--allow-degraded",
            "--",
            "sh",
            "-c",
            "id -u",
        ],
    ));
    let result = json(&degraded);
    let protections = &result["result"]["protections"];
    assert_eq!(protections["cgroup_version"], "none");
    assert_eq!(
        protections["limits"]["memory_bytes"],
        serde_json::Value::Null,
        "no cap claimed"
    );
    assert!(
        protections["degraded"][0]
            .as_str()
            .unwrap()
            .contains("no cgroup"),
        "{protections}"
    );
}
