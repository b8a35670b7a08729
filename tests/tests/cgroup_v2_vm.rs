//! The pure cgroup v2 path, for real: the engine's proofs run inside a VM whose kernel has only
//! the unified hierarchy (`../shared/vm/run-in-v2-vm.sh`), then the results are checked here.
//!
//! Needs qemu-system-x86, busybox-static and cpio (`.ci/run` installs them). Without them the
//! test fails with that remedy; `CARGO_SANDBOX_SKIP_VM=1` skips it explicitly.

use e2e::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn vm_script() -> PathBuf {
    std::env::var_os("CARGO_SANDBOX_V2_VM_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/vm/run-in-v2-vm.sh"))
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn json(dir: &Path, name: &str) -> Value {
    let text = read(dir, &format!("{name}.json"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.json: {e}: {text}"))
}

fn usage(v: &Value, key: &str) -> u64 {
    v["result"]["usage"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("usage.{key} in {v}"))
}

#[test]
fn engine_proofs_hold_on_pure_cgroup_v2() {
    if std::env::var_os("CARGO_SANDBOX_SKIP_VM").is_some_and(|v| v == "1") {
        eprintln!("skipped: CARGO_SANDBOX_SKIP_VM=1");
        return;
    }
    let script = vm_script();
    let have_qemu = Command::new("sh")
        .args(["-c", "command -v qemu-system-x86_64 && command -v cpio"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have_qemu && script.exists(),
        "the cgroup v2 VM test needs {} and `apt-get install -y qemu-system-x86 busybox-static cpio`; \
         set CARGO_SANDBOX_SKIP_VM=1 to skip it explicitly",
        script.display()
    );

    let dir = bin_dir().join("v2-vm-test");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for bin in [cargo_sandbox(), probe(), bin_dir().join("engine-batch")] {
        std::fs::copy(&bin, dir.join(bin.file_name().unwrap())).unwrap();
    }
    std::fs::copy(
        workspace_root().join("tests/vm/v2-checks.sh"),
        dir.join("v2-checks.sh"),
    )
    .unwrap();
    let out = Command::new(&script)
        .args(["--timeout", "900", "--add", "/usr/bin/setpriv:/opt/setpriv"])
        .args(["--controllers", "+cpu +memory +pids +io"])
        .arg(&dir)
        .args(["sh", "./v2-checks.sh"])
        .output()
        .expect("running the VM script");
    assert!(
        out.status.success() && dir.join("finished.txt").exists(),
        "VM run failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rc = |name: &str| {
        read(&dir, &format!("{name}.rc"))
            .trim()
            .parse::<i32>()
            .unwrap()
    };
    let out_of = |name: &str| read(&dir, &format!("{name}.out"));

    for name in [
        "forkbomb", "hog", "touch", "burn", "daemon", "net", "timeout", "quota",
    ] {
        assert_eq!(
            json(&dir, name)["result"]["protections"]["cgroup_version"],
            "v2",
            "{name}"
        );
    }

    let bomb = json(&dir, "forkbomb");
    assert_eq!(rc("forkbomb"), 0, "{}", out_of("forkbomb"));
    assert!(usage(&bomb, "forks_refused") > 0, "{bomb}");
    assert_eq!(usage(&bomb, "pids_peak"), 32, "{bomb}");

    let hog = json(&dir, "hog");
    assert_eq!(rc("hog"), 137, "{}", out_of("hog"));
    assert!(usage(&hog, "oom_kills") >= 1, "{hog}");
    let peak = usage(&hog, "memory_peak_bytes");
    assert!((60 * MIB..=68 * MIB).contains(&peak), "hog peak {peak}");

    assert_eq!(
        hog["result"]["oom_victims"],
        serde_json::json!(["sandbox-probe"])
    );

    let touch = json(&dir, "touch");
    let peak = usage(&touch, "memory_peak_bytes");
    assert!(
        (100 * MIB..=110 * MIB).contains(&peak),
        "touch peak {} MiB",
        peak / MIB
    );

    // Under software emulation the probe's own start-up costs tens of ms: 20% over, not 10%.
    let burn = json(&dir, "burn");
    let cpu = usage(&burn, "cpu_user_us") + usage(&burn, "cpu_system_us");
    assert!((900_000..=1_200_000).contains(&cpu), "burn cpu {cpu} us");

    let daemon = json(&dir, "daemon");
    assert_eq!(daemon["result"]["leaked_total"], 1, "{daemon}");
    assert!(daemon["result"]["leaked_processes"][0]["cmdline"]
        .as_str()
        .unwrap()
        .contains("vmtoken"));

    let net = json(&dir, "net");
    assert!(
        out_of("net").contains("Network is unreachable"),
        "{}",
        out_of("net")
    );
    assert!(
        net["result"]["network_attempts"]["ipv4_no_route"]
            .as_u64()
            .unwrap()
            >= 1,
        "{net}"
    );

    assert_eq!(rc("timeout"), 124, "{}", out_of("timeout"));
    assert_eq!(json(&dir, "timeout")["result"]["timed_out"], true);

    assert_eq!(
        read(&dir, "cgview.out"),
        "100663296\nread-only\n",
        "own cgroup, read-only"
    );

    let quota = json(&dir, "quota");
    assert!(
        quota["result"]["wall_time"].as_u64().unwrap() >= 500_000,
        "{quota}"
    );

    assert_eq!(
        read(&dir, "survivors.txt").trim(),
        "",
        "processes survived their sandboxes"
    );
    assert_eq!(
        read(&dir, "leftover-cgroups.txt").trim(),
        "",
        "cgroups left behind"
    );

    // The device allowlist as a BPF program.
    assert_eq!(read(&dir, "devices.out"), "disk-refused\nnull-works\n");
    assert_eq!(
        json(&dir, "devices")["result"]["protections"]["devices"],
        "allowlist"
    );
    // The io controller: figures present (no disk here, so 0), the cap accepted.
    let io = json(&dir, "io");
    assert_eq!(rc("io"), 0, "{}", out_of("io"));
    assert_eq!(usage(&io, "io_write_bytes"), 0, "{io}");
    assert_eq!(usage(&io, "io_read_bytes"), 0, "{io}");
    // --userns: uid 0 inside, nobody on the host.
    assert_eq!(out_of("userns"), "0\n");
    assert_eq!(read(&dir, "userns-owner.txt"), "65534:65534\n");
    assert_eq!(
        json(&dir, "userns")["result"]["protections"]["root_is_host_uid"],
        65534
    );

    let nested = json(&dir, "nested");
    assert_eq!(rc("nested"), 137, "{}", out_of("nested"));
    assert!(usage(&nested, "oom_kills") >= 1, "{nested}");
    assert_eq!(
        read(&dir, "nested-subtree.txt").trim(),
        "",
        "the runner's cgroup is restored"
    );
    assert_eq!(read(&dir, "nested-leftovers.txt").trim(), "");
    // Without `io` delegated, an IO cap is refused, not dropped.
    assert_eq!(rc("nested-io"), 125, "{}", out_of("nested-io"));
    assert!(
        out_of("nested-io").contains("--io-write-bps"),
        "{}",
        out_of("nested-io")
    );

    assert_eq!(rc("shared"), 125, "{}", out_of("shared"));
    assert!(
        out_of("shared").contains("systemd-run --scope -p Delegate=yes"),
        "{}",
        out_of("shared")
    );
    assert_eq!(read(&dir, "shared-leftovers.txt").trim(), "");

    let parent = json(&dir, "parent");
    assert_eq!(rc("parent"), 0, "{}", out_of("parent"));
    assert_eq!(usage(&parent, "pids_peak"), 16, "{parent}");
    assert_eq!(read(&dir, "parent-leftovers.txt").trim(), "");
    assert_eq!(read(&dir, "survivors-at-end.txt").trim(), "");

    // Rootless: a user namespace, and the caps of the delegated subtree.
    let rootless = json(&dir, "rootless");
    assert_eq!(rc("rootless"), 137, "{}", out_of("rootless"));
    assert!(usage(&rootless, "oom_kills") >= 1, "{rootless}");
    assert_eq!(rootless["result"]["protections"]["namespaces"][0], "user");

    // Sandboxes made ahead, as `cargo sandbox test` makes them: inits from a zygote cloned
    // straight into their cgroups, pooled network namespaces, spare cgroups.
    assert_eq!(read(&dir, "batch.out"), e2e::ENGINE_BATCH_EXPECTED);
    assert_eq!(read(&dir, "rootless-leftovers.txt").trim(), "");
}
