//! Ctrl-C, SIGTERM and SIGHUP cancel the run: every sandbox watching the [`Cancel`] is killed
//! and cleaned up, and the runner exits with [`crate::exit::INTERRUPTED`].

use anyhow::Context;
use harness::Cancel;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

pub fn cancel_on_signals() -> anyhow::Result<Cancel> {
    let cancel = Cancel::new().context("creating the cancellation channel")?;
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        let handle = cancel
            .trigger_handle()
            .context("creating the cancellation channel")?;
        signal_hook::low_level::pipe::register(signal, handle)
            .with_context(|| format!("installing the handler for signal {signal}"))?;
    }
    Ok(cancel)
}
