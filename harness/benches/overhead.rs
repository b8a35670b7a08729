//! What a sandbox costs: runs `/bin/true` plainly (fork + exec + wait) and in sandboxes (without
//! caps, with caps, with caps plus filesystem isolation, and one made on the spot), interleaved
//! round by round so drift hits all alike, and prints medians and the overhead against the
//! plain baseline measured in the same run. Sandboxes are made ahead by background threads while
//! others run, as in a test run. A last row measures the test default with its sandbox made
//! before and none made meanwhile: what a sandbox costs a test when the making has a core of its
//! own (on 2 cores it competes with the test, which the rows above include).
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
        shown_at: Vec::new(),
    };

    let mut plain = Vec::with_capacity(rounds);
    let mut sandbox = Vec::with_capacity(rounds);
    let mut sandbox_caps = Vec::with_capacity(rounds);
    let mut sandbox_fs = Vec::with_capacity(rounds);
    let mut one_off_caps = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        plain.push(time(plain_true));
        sandbox.push(time(|| run(&engine, &bare)));
        sandbox_caps.push(time(|| run(&engine, &capped)));
        sandbox_fs.push(time(|| run(&engine, &isolated)));
        one_off_caps.push(time(|| run(&one_off, &capped)));
    }
    // The test default's own path, its sandbox made before and none made meanwhile: what a
    // sandbox costs a test when the making ahead has cores of its own (on 2 cores it competes
    // with the test, and the rows above include that).
    // Its baseline is measured in the same phase, alternating.
    let mut alone = Vec::with_capacity(rounds);
    let mut plain_alone = Vec::with_capacity(rounds);
    let before = engine.started_ahead();
    for _ in 0..rounds.div_ceil(BATCH) {
        engine.prepare(&isolated, Some(BATCH));
        std::thread::sleep(Duration::from_millis(80));
        for _ in 0..BATCH {
            plain_alone.push(time(plain_true));
            alone.push(time(|| run(&engine, &isolated)));
        }
    }
    let alone_ahead = engine.started_ahead() - before;
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
    // The last row against its own baseline.
    let (base, m) = (median(&mut plain_alone), median(&mut alone));
    println!(
        "{:<28} {:>10} {:>10} {:>12} {:>7.1}x   (plain {} in that phase; {alone_ahead} of {} made before)",
        "test default, made before",
        ms(m),
        ms(percentile(&mut alone, 90)),
        ms(m.saturating_sub(base)),
        m.as_secs_f64() / base.as_secs_f64(),
        ms(base),
        alone.len()
    );
}

fn plain_true() {
    let status = Command::new("/bin/true").status().expect("spawn /bin/true");
    assert!(status.success());
}

/// Sandboxes made at once for the last row, before they are measured.
const BATCH: usize = 4;

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
