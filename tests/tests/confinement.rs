//! Root in the sandbox is not root on the host: the `escape` fixtures try to reach the host and
//! must fail under the defaults (the host checked afterwards), and some pass again with
//! `--privileged`, where the attempt only touches the sandbox's own namespaces.

use e2e::*;
use std::collections::BTreeMap;

fn host_state() -> (String, String) {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    (
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/domainname"),
    )
}

fn outcomes(run: &TestRun) -> BTreeMap<String, String> {
    run.outcomes()
        .into_iter()
        .map(|((_, name), outcome)| (name.trim_start_matches("tests::").to_owned(), outcome))
        .collect()
}

#[test]
fn escape_attempts_fail_and_the_host_is_untouched() {
    skip_unless_privileged!();
    let marker = token("host-marker");
    std::fs::write(std::path::Path::new("/tmp").join(&marker), "host only").unwrap();
    std::env::set_var("ESCAPE_HOST_MARKER", &marker);
    let before = host_state();

    let run = fixtures_test(&["-p", "escape", "--env", "ESCAPE_HOST_MARKER"]);
    assert_eq!(run.code, 100, "{}", run.stderr);
    let got = outcomes(&run);
    for (name, outcome) in &got {
        let want = if name == "kills_everything" {
            "passed"
        } else {
            "failed"
        };
        assert_eq!(outcome, want, "{name}");
    }
    assert_eq!(got.len(), 10);
    assert_eq!(host_state(), before, "hostname and sysctls unchanged");
    assert_eq!(run.report["protections"]["capabilities"], "reduced");

    let run = fixtures_test(&[
        "-p",
        "escape",
        "--privileged",
        "--env",
        "ESCAPE_HOST_MARKER",
    ]);
    let got = outcomes(&run);
    let passing: Vec<&str> = got
        .iter()
        .filter(|(_, o)| *o == "passed")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        passing,
        [
            "kills_everything",
            "ptraces_its_parent",
            "reaches_module_loading",
            "remounts_sys_read_write",
            "sets_hostname"
        ],
        "with --privileged only the sandbox's own namespaces change"
    );
    assert_eq!(
        host_state(),
        before,
        "even privileged, the host's names are untouched"
    );
    assert_eq!(run.report["tests"][0]["spec"]["privileged"], true);
    assert_eq!(run.report["protections"]["capabilities"], "privileged");
    let _ = std::fs::remove_file(std::path::Path::new("/tmp").join(&marker));
}

#[test]
fn commands_run_with_reduced_capabilities_no_new_privs_and_seccomp() {
    skip_unless_privileged!();
    let run = exec(
        &[],
        &[
            "sh",
            "-c",
            "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let status: BTreeMap<&str, &str> = run
        .stderr
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    assert_eq!(status["NoNewPrivs"], "1");
    assert_eq!(status["Seccomp"], "2", "a filter is installed");
    let caps = u64::from_str_radix(status["CapEff"], 16).unwrap();
    let sys_admin = 1u64 << 21;
    assert_eq!(caps & sys_admin, 0, "no CAP_SYS_ADMIN: {caps:x}");
    assert_ne!(caps & 1, 0, "CAP_CHOWN kept: {caps:x}");

    let privileged = exec(
        &["--privileged"],
        &[
            "sh",
            "-c",
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
        ],
    );
    assert!(
        privileged.stderr.contains("NoNewPrivs:\t0") && privileged.stderr.contains("Seccomp:\t0"),
        "{}",
        privileged.stderr
    );
}

#[test]
fn the_sandbox_sees_only_its_own_cgroup_read_only() {
    skip_unless_privileged!();
    let script =
        "f=/sys/fs/cgroup/memory/memory.limit_in_bytes; [ -e $f ] || f=/sys/fs/cgroup/memory.max; \
                  cat $f; (echo max > $f) 2>/dev/null && echo raised || echo read-only";
    let run = exec(&["--memory", "96M"], &["sh", "-c", script]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        [&(96u64 << 20).to_string(), "read-only"],
        "{}",
        run.stderr
    );
}
