//! Which processes the OOM killer chose in a sandbox. The cgroup counts OOM kills but does not
//! name them; the kernel log does, in one `oom-kill:` line per kill that carries the memory
//! cgroup's path and the victim's name. Read only after a sandbox had an OOM kill, and only
//! where the runner may read `/dev/kmsg` (root, or `kernel.dmesg_restrict = 0`): elsewhere the
//! list stays empty, which reports show as "unknown", never as "none". The list can be shorter
//! than the kill count: the kernel rate-limits these lines (10 per 5 s) and prints none for
//! the rest of a group killed together (`memory.oom.group`).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// At most this many names per sandbox (a fork bomb under a memory cap can lose hundreds).
const MAX_VICTIMS: usize = 16;

/// The names of the processes killed by the OOM killer in the memory cgroup `dir`, oldest
/// first, without repeats.
pub fn victims(dir: &Path) -> Vec<String> {
    // Our sandbox cgroups are `.../cargo-sandbox.<pid>.<start>/s<n>`: the last two components
    // name one exactly, whatever prefix the kernel prints for the hierarchy.
    let mut tail = dir.components().rev().take(2).collect::<Vec<_>>();
    tail.reverse();
    let suffix = format!(
        "/{}",
        tail.iter()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    );
    let Ok(mut kmsg) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut record = vec![0u8; 8192];
    loop {
        match kmsg.read(&mut record) {
            Ok(0) => break,
            Ok(n) => {
                let text = String::from_utf8_lossy(&record[..n]);
                if let Some(name) = victim_in(&text, &suffix) {
                    if !names.contains(&name) && names.len() < MAX_VICTIMS {
                        names.push(name);
                    }
                }
            }
            // EPIPE: records were overwritten while we read; the next read continues.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    names
}

/// `oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/a/s1,task_memcg=/a/s1,task=hog,pid=7,uid=0`
fn victim_in(record: &str, cgroup_suffix: &str) -> Option<String> {
    let message = record.split_once(';')?.1.lines().next()?;
    let fields = message.strip_prefix("oom-kill:")?;
    let field = |key: &str| {
        fields
            .split(',')
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
    };
    let memcg = field("task_memcg")?;
    if !memcg.ends_with(cgroup_suffix) {
        return None;
    }
    // The name may itself hold commas: it runs from `task=` to the `,pid=` that follows it.
    let name = fields.split_once(",task=")?.1;
    Some(name[..name.rfind(",pid=")?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_victim_of_our_cgroup_only() {
        let line = "6,1234,5678,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,\
                    mems_allowed=0,oom_memcg=/p/cargo-sandbox.9.8/s5,\
                    task_memcg=/p/cargo-sandbox.9.8/s5,task=sandbox-probe,pid=77,uid=0\n";
        assert_eq!(
            victim_in(line, "/cargo-sandbox.9.8/s5").as_deref(),
            Some("sandbox-probe")
        );
        assert_eq!(victim_in(line, "/cargo-sandbox.9.8/s55"), None);
        assert_eq!(victim_in(line, "/cargo-sandbox.9.8/s"), None);
        assert_eq!(
            victim_in("6,1,2,-;Out of memory: Killed process 77", "/s5"),
            None
        );
        let comma = "6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/c/s5,\
                     task_memcg=/c/s5,task=a,b,pid=9,uid=0";
        assert_eq!(victim_in(comma, "/s5").as_deref(), Some("a,b"));
    }
}
