//! Runs a batch of sandboxes through the engine as `cargo sandbox test` does (made ahead:
//! zygote-started inits, pooled network namespaces, spare cgroups), for the end-to-end tests
//! here and in the cgroup v2 VM. Prints one line per check, `name value`.
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
    // Many in a row: each gets its own PID 1 and a network nobody used.
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
