//! What a sandbox had in force, as every report and `exec` say it in one line.

use harness::units::format_bytes;
use harness::Protections;

/// The protections in one line: every report ends with it, so a reader knows what the
/// outcomes were measured under (and what was asked for but missing).
pub fn in_force(p: &Protections) -> String {
    let l = &p.limits;
    format!(
        "{} namespaces{}; capabilities {}; devices {}; memory {}{}, pids {}, cpu {}{}; /tmp {}; filesystem {}; read-only {}{}; cgroup {}",
        p.namespaces.join(","),
        p.root_is_host_uid
            .map_or(String::new(), |uid| format!(" (root is host uid {uid})")),
        p.capabilities,
        p.devices,
        l.memory_bytes.map_or("uncapped".into(), format_bytes),
        if p.swap_disabled { " (no swap)" } else { "" },
        l.pids.map_or("uncapped".into(), |n| n.to_string()),
        l.cpu_millis.map_or("uncapped".into(), |m| format!(
            "{:.2} CPUs",
            f64::from(m) / 1000.0
        )),
        l.io_write_bps.map_or(String::new(), |bps| format!(
            ", io writes {}/s",
            format_bytes(bps)
        )),
        format_bytes(p.tmp_size_bytes),
        p.filesystem,
        if p.read_only.is_empty() { "nothing".into() } else { p.read_only.join(",") },
        if p.copy_on_write.is_empty() {
            String::new()
        } else {
            format!("; copy-on-write {}", p.copy_on_write.join(","))
        },
        p.cgroup_version,
    ) + &degraded(p)
}

/// What was asked for but not in force, loudly.
fn degraded(p: &Protections) -> String {
    if p.degraded.is_empty() {
        String::new()
    } else {
        format!(
            "; NOT IN FORCE (--allow-degraded): {}",
            p.degraded.join("; ")
        )
    }
}
