//! Runs a batch of sandboxes through the engine as `cargo sandbox test` does (made ahead:
//! inits started and built ahead by the zygote, pooled network namespaces, spare cgroups), for
//! the end-to-end tests here and in the cgroup v2 VM. Prints one line per check, `name value`;
//! `e2e::ENGINE_BATCH_EXPECTED` is what a correct engine prints.
//!
//! `engine-batch PROBE` (PROBE: the sandbox-probe binary).

use harness::{Engine, EngineOptions, Exit, Limits, Output, SandboxSpec};

fn main() {
    harness::init::run_if_requested();
    let probe = std::env::args().nth(1).expect("usage: engine-batch PROBE");
    let engine = Engine::new(EngineOptions {
        prepare_ahead: true,
        ..EngineOptions::default()
    })
    .expect("sandboxes here");
    println!("zygote {}", engine.has_zygote());
    let cwd = std::env::current_dir().expect("cwd");
    let env = vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())];
    let spec = |argv: &[&str]| {
        let mut spec = SandboxSpec::new(
            argv.iter().map(|a| a.to_string()).collect(),
            cwd.clone(),
            env.clone(),
        );
        spec.output = Output::Capture {
            limit_bytes: 1 << 16,
        };
        spec
    };
    // A sandbox asked for right after its shape was announced (as a run announces its tests
    // once built) takes the init being made for it, rather than making a second one beside it.
    let mut announced = spec(&["true"]);
    announced.limits = Limits {
        pids: Some(77),
        ..Limits::default()
    };
    let before = engine.started_ahead();
    engine.prepare(&announced, Some(1));
    engine.run(&announced, None).expect("a sandbox");
    println!(
        "took_the_one_being_made {}",
        engine.started_ahead() - before
    );

    // Many in a row: each gets its own PID 1 and a network nobody else is in.
    let mut ok = 0;
    for _ in 0..20 {
        let result = engine
            .run(
                &spec(&[
                    "sh",
                    "-c",
                    "test $$ = 2 && grep -q '^ *lo: *0 *0 ' /proc/net/dev",
                ]),
                None,
            )
            .expect("a sandbox");
        if result.exit == Exit::Code(0) {
            ok += 1;
        }
    }
    println!("fresh {ok}");
    // Most of them in a network namespace an earlier one left empty (see harness's netpool).
    println!(
        "networks_used_again {}",
        u8::from(engine.reused_networks() >= 10)
    );
    networks_used_again_only_when_empty(&engine, &spec, &probe);
    // Most of them ran in inits started ahead (the first of a shape cannot).
    println!("made_ahead {}", u8::from(engine.started_ahead() >= 15));

    // Inits cloned by the zygote come confined (it confined itself once), unless the sandbox
    // is --privileged (those never come from it); twice each, so the second runs in an init
    // made for its shape.
    let status_line = |privileged: bool, key: &str| -> String {
        let mut s = spec(&["sh", "-c", &format!("grep '^{key}:' /proc/self/status")]);
        s.privileged = privileged;
        let result = engine.run(&s, None).expect("a sandbox");
        let out = result.output.map(|o| o.head).unwrap_or_default();
        out.split_whitespace().nth(1).unwrap_or("?").to_owned()
    };
    for privileged in [false, false, true, true] {
        let name = if privileged { "privileged" } else { "confined" };
        // CAP_SYS_ADMIN (bit 21) in what the command may have: only a privileged one keeps it.
        let bounding = u64::from_str_radix(&status_line(privileged, "CapBnd"), 16).unwrap_or(0);
        println!(
            "{name} seccomp {} no_new_privs {} sys_admin {}",
            status_line(privileged, "Seccomp"),
            status_line(privileged, "NoNewPrivs"),
            bounding >> 21 & 1
        );
    }

    // A working directory under /tmp, which the sandbox's private /tmp would hide: bound back
    // into it (twice: the second sandbox was made ahead for that shape). The command must not
    // inherit the init's pipes either (fd 3 and 4 closed).
    let host_tmp = std::env::temp_dir().join(format!("engine-batch-{}", std::process::id()));
    std::fs::create_dir_all(&host_tmp).expect("a directory under /tmp");
    std::fs::write(host_tmp.join("marker"), "here").expect("the marker");
    let mut reached = 0;
    for _ in 0..2 {
        let mut s = spec(&[
            "sh",
            "-c",
            "test \"$(cat marker)\" = here && test ! -e /proc/self/fd/3 && test ! -e /proc/self/fd/4",
        ]);
        s.cwd = host_tmp.clone();
        if engine.run(&s, None).expect("a sandbox").exit == Exit::Code(0) {
            reached += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&host_tmp);
    println!("tmp_cwd {reached}");

    // Output written line by line (read in pauses, see harness's watch), then in bulk, then
    // line by line again with gaps between lines, comes whole and in order, and the last
    // line written just before the exit too.
    let mut talk = spec(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done; \
         head -c 400000 /dev/zero | tr '\\0' x; echo; \
         for i in 1 2 3; do echo late $i; sleep 0.002; done; echo end",
    ]);
    talk.output = Output::Capture {
        limit_bytes: 1 << 20,
    };
    let text = engine
        .run(&talk, None)
        .expect("a sandbox")
        .output
        .map(|o| o.text())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let in_order = lines.len() == 305
        && (0..300).all(|i| lines[i] == format!("line {i}"))
        && lines[300].len() == 400_000
        && lines[300].bytes().all(|b| b == b'x')
        && lines[301..] == ["late 1", "late 2", "late 3", "end"];
    println!("output_whole {}", u8::from(in_order));
    let mut hog = spec(&[&probe, "hog"]);
    hog.limits = Limits {
        memory_bytes: Some(64 << 20),
        ..Limits::default()
    };
    let result = engine.run(&hog, None).expect("a sandbox");
    println!("hog_exit {}", result.exit.shell_code());
    println!("hog_oom_kills {}", result.usage.oom_kills);
    let mut bomb = spec(&[&probe, "forkbomb", "batchtoken"]);
    bomb.limits = Limits {
        pids: Some(16),
        ..Limits::default()
    };
    let result = engine.run(&bomb, None).expect("a sandbox");
    println!("bomb_refused {}", u64::from(result.usage.forks_refused > 0));
    println!("bomb_peak {}", result.usage.pids_peak.unwrap_or(0));
}

/// A network namespace serves again only when it cannot be told from a new one: not after a
/// sandbox that talked over loopback (its socket then sits in TIME_WAIT for a minute, and `lo`
/// counted the packets), nor after one that tried the outside (its "no route" counter).
fn networks_used_again_only_when_empty(
    engine: &Engine,
    spec: &dyn Fn(&[&str]) -> SandboxSpec,
    probe: &str,
) {
    let run = |argv: &[&str]| engine.run(&spec(argv), None).expect("a sandbox");
    let as_new = || {
        (0..12)
            .filter(|_| {
                let result = run(&[probe, "network-state"]);
                let out = result.output.map(|o| o.head).unwrap_or_default();
                out.trim() == "tw=0 inuse=0 no_route=0 lo_packets=0"
                    && result.network_attempts.total() == 0
            })
            .count()
    };
    println!(
        "loopback_exit {}",
        run(&[probe, "loopback"]).exit.shell_code()
    );
    println!("as_new_after_loopback {}", as_new());
    let tried = run(&[probe, "net"]);
    println!(
        "tried_the_network {}",
        u8::from(tried.network_attempts.total() > 0)
    );
    println!("as_new_after_an_attempt {}", as_new());
    // A privileged command may reconfigure its namespace without a trace in any counter (an
    // MTU): its namespace never serves again.
    let mut reconfigure = spec(&[probe, "lo-mtu", "1280"]);
    reconfigure.privileged = true;
    let set = engine.run(&reconfigure, None).expect("a sandbox");
    let out = set.output.map(|o| o.head).unwrap_or_default();
    println!("privileged_set_mtu {}", out.trim());
    let untouched = (0..12)
        .filter(|_| {
            let result = run(&[probe, "lo-mtu"]);
            result.output.map(|o| o.head).unwrap_or_default().trim() != "1280"
        })
        .count();
    println!("mtu_unchanged_after {untouched}");
}
