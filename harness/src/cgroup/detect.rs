//! Finds, once, where this process's own cgroups are: from `/proc/self/mountinfo` (which
//! hierarchies are mounted where) and `/proc/self/cgroup` (our path in each).
//!
//! Decision: when memory, pids and cpuacct each have a v1 hierarchy, v1 is used (legacy and
//! hybrid systemd layouts, where cgroup2 only carries leftovers); otherwise the cgroup2 mount is
//! used (pure v2). Mixing versions per controller is not supported.

use super::{Layout, V1Dirs};
use crate::error::SandboxError;
use std::path::PathBuf;

struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    super_options: Vec<String>,
}

/// One line of `/proc/self/cgroup`: `hierarchy-id:controllers:path`.
struct Membership {
    controllers: Vec<String>,
    path: String,
}

pub fn detect() -> Result<Layout, SandboxError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| SandboxError::io("reading /proc/self/mountinfo", e))?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| SandboxError::io("reading /proc/self/cgroup", e))?;
    layout_from(&mountinfo, &cgroup)
}

fn layout_from(mountinfo: &str, cgroup: &str) -> Result<Layout, SandboxError> {
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(parse_mount).collect();
    let members: Vec<Membership> = cgroup.lines().filter_map(parse_membership).collect();

    let v1_dir = |controller: &str| -> Option<PathBuf> {
        let member = members
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))?;
        mounts
            .iter()
            .filter(|m| m.fstype == "cgroup" && m.super_options.iter().any(|o| o == controller))
            .find_map(|m| own_dir(m, &member.path))
    };
    if let (Some(memory), Some(pids), Some(cpuacct)) =
        (v1_dir("memory"), v1_dir("pids"), v1_dir("cpuacct"))
    {
        return Ok(Layout::V1(V1Dirs {
            memory,
            pids,
            cpuacct,
            cpu: v1_dir("cpu"),
            blkio: v1_dir("blkio"),
            devices: v1_dir("devices"),
        }));
    }

    let unified = members.iter().find(|m| m.controllers.is_empty());
    let own = unified.and_then(|member| {
        mounts
            .iter()
            .filter(|m| m.fstype == "cgroup2")
            .find_map(|m| own_dir(m, &member.path))
    });
    match own {
        Some(own) => Ok(Layout::V2 {
            own,
            explicit: false,
        }),
        None => Err(SandboxError::NoCgroups(
            "neither cgroup v1 hierarchies for memory, pids and cpuacct nor a cgroup2 mount \
             containing this process were found in /proc/self/mountinfo; mount cgroupfs \
             (e.g. `mount -t cgroup2 none /sys/fs/cgroup`)"
                .to_owned(),
        )),
    }
}

/// The layout for explicit parent directories: which hierarchy (from mountinfo) each lies in.
pub fn layout_of_parents(parents: &[PathBuf]) -> Option<Layout> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(parse_mount).collect();
    // The deepest mount point containing the directory is the one it lies in.
    let mount_of = |dir: &PathBuf| {
        mounts
            .iter()
            .filter(|m| {
                (m.fstype == "cgroup" || m.fstype == "cgroup2") && dir.starts_with(&m.point)
            })
            .max_by_key(|m| m.point.components().count())
    };
    if let [only] = parents {
        if mount_of(only)?.fstype == "cgroup2" {
            return Some(Layout::V2 {
                own: only.clone(),
                explicit: true,
            });
        }
    }
    let for_controller = |controller: &str| {
        parents
            .iter()
            .find(|p| {
                mount_of(p).is_some_and(|m| {
                    m.fstype == "cgroup" && m.super_options.iter().any(|o| o == controller)
                })
            })
            .cloned()
    };
    Some(Layout::V1(V1Dirs {
        memory: for_controller("memory")?,
        pids: for_controller("pids")?,
        cpuacct: for_controller("cpuacct")?,
        cpu: for_controller("cpu"),
        blkio: for_controller("blkio"),
        devices: for_controller("devices"),
    }))
}

/// The directory of cgroup `path` inside mount `m`, when the mount shows it.
fn own_dir(m: &Mount, path: &str) -> Option<PathBuf> {
    let rel = if m.root == "/" {
        path
    } else {
        path.strip_prefix(m.root.as_str())
            .filter(|r| r.is_empty() || r.starts_with('/'))?
    };
    let dir = m.point.join(rel.trim_start_matches('/'));
    dir.is_dir().then_some(dir)
}

fn parse_mount(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let fstype = right.next()?.to_owned();
    let _source = right.next()?;
    let super_options = right.next()?.split(',').map(str::to_owned).collect();
    Some(Mount {
        root: unescape(fields.get(3)?),
        point: PathBuf::from(unescape(fields.get(4)?)),
        fstype,
        super_options,
    })
}

fn parse_membership(line: &str) -> Option<Membership> {
    let mut parts = line.splitn(3, ':');
    let _id = parts.next()?;
    let controllers = parts.next()?;
    let path = parts.next()?.to_owned();
    let controllers = controllers
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    Some(Membership { controllers, path })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let oct = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = oct.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let m =
            parse_mount("35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory")
                .unwrap();
        assert_eq!(m.fstype, "cgroup");
        assert_eq!(m.point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert!(m.super_options.contains(&"memory".to_owned()));
        let m = parse_mount("41 31 0:38 /a\\040b /mnt/x\\040y rw shared:5 - cgroup2 cgroup2 rw")
            .unwrap();
        assert_eq!(m.root, "/a b");
        assert_eq!(m.point, PathBuf::from("/mnt/x y"));
    }

    #[test]
    fn parses_membership() {
        let m = parse_membership("4:memory:/process_api/abc").unwrap();
        assert_eq!(m.controllers, vec!["memory"]);
        assert_eq!(m.path, "/process_api/abc");
        let m = parse_membership("0::/user.slice").unwrap();
        assert!(m.controllers.is_empty());
        let m = parse_membership("2:cpu,cpuacct:/").unwrap();
        assert_eq!(m.controllers, vec!["cpu", "cpuacct"]);
    }

    #[test]
    fn reports_missing_hierarchies() {
        let err = layout_from("", "0::/\n").err().unwrap();
        assert!(err.to_string().contains("no usable cgroup"));
    }
}
