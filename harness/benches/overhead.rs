//! What a sandbox costs: runs `/bin/true` plainly (fork + exec + wait) and in a sandbox, without
//! with caps, and with caps plus filesystem isolation, interleaved round by round so drift hits
//! all alike, and prints medians
//! and the overhead against the plain baseline measured in the same run.
//!
//! `cargo bench -p sandbox-harness --bench overhead [-- ROUNDS]` (root; default 500 rounds).

use sandbox_harness::{Engine, EngineOptions, Filesystem, Limits, Output, SandboxSpec};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    sandbox_harness::init::run_if_requested();
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let engine_with = |prepare_ahead| match Engine::new(EngineOptions {
        prepare_ahead,
        ..EngineOptions::default()
    }) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("overhead: cannot run sandboxes here: {e}");
            std::process::exit(1);
        }
    };
    // What `cargo sandbox test` uses (network namespaces made ahead), and what one-off
    // sandboxes (`exec`) get.
    let engine = engine_with(true);
    let one_off = engine_with(false);
    let cwd = std::env::current_dir().expect("cwd");
    let env = vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())];
    let mut bare = SandboxSpec::new(vec!["/bin/true".to_owned()], cwd, env);
    bare.output = Output::Inherit;
    let mut capped = bare.clone();
    capped.limits = Limits {
        memory_bytes: Some(256 << 20),
        pids: Some(64),
        cpu_millis: Some(1000),
        io_write_bps: None,
    };
    // What `cargo sandbox test` runs by default: caps, a read-only host, the workspace
    // copy-on-write, a scratch directory.
    let mut isolated = capped.clone();
    let scratch = std::env::temp_dir().join(format!("overhead-scratch-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    isolated.filesystem = Filesystem::Isolated {
        copy_on_write: vec![isolated.cwd.clone()],
        scratch: vec![scratch.clone()],
        writable: Vec::new(),
        keep_writes: None,
    };

    let mut plain = Vec::with_capacity(rounds);
    let mut sandbox = Vec::with_capacity(rounds);
    let mut sandbox_caps = Vec::with_capacity(rounds);
    let mut sandbox_fs = Vec::with_capacity(rounds);
    let mut one_off_caps = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        plain.push(time(|| {
            let status = Command::new("/bin/true").status().expect("spawn /bin/true");
            assert!(status.success());
        }));
        sandbox.push(time(|| run(&engine, &bare)));
        sandbox_caps.push(time(|| run(&engine, &capped)));
        sandbox_fs.push(time(|| run(&engine, &isolated)));
        one_off_caps.push(time(|| run(&one_off, &capped)));
    }
    let _ = std::fs::remove_dir(&scratch);

    let base = median(&mut plain);
    println!(
        "overhead of a sandbox around /bin/true, {rounds} rounds, cgroup {}",
        engine.cgroup_version()
    );
    println!(
        "{:<28} {:>10} {:>10} {:>12} {:>8}",
        "", "median", "p90", "overhead", "ratio"
    );
    for (name, samples) in [
        ("plain fork+exec", &mut plain),
        ("sandbox, no caps", &mut sandbox),
        ("sandbox + memory/pids/cpu", &mut sandbox_caps),
        ("+ read-only host, overlay", &mut sandbox_fs),
        ("caps, nothing made ahead", &mut one_off_caps),
    ] {
        let m = median(samples);
        println!(
            "{name:<28} {:>10} {:>10} {:>12} {:>7.1}x",
            ms(m),
            ms(percentile(samples, 90)),
            ms(m.saturating_sub(base)),
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
}

fn run(engine: &Engine, spec: &SandboxSpec) {
    let result = engine.run(spec, None).expect("sandbox run");
    assert_eq!(result.exit, sandbox_harness::Exit::Code(0));
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(samples: &mut [Duration]) -> Duration {
    percentile(samples, 50)
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort_unstable();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
