//! Block-device IO: which disks a bandwidth cap applies to, and the per-cgroup byte counters of
//! cgroup v1 `blkio` and v2 `io`.

/// `MAJ:MIN` of every whole block device with a size (partitions share their disk's queue, and
/// throttling is set per disk). Read once per process, off the per-sandbox path: devices added
/// during a run are neither capped nor counted.
pub fn disks() -> &'static [String] {
    static DISKS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    DISKS.get_or_init(read_disks)
}

fn read_disks() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let mut disks: Vec<String> = entries
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("size"))
                .is_ok_and(|s| s.trim().parse::<u64>().is_ok_and(|n| n > 0))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .map(|dev| dev.trim().to_owned())
        .collect();
    disks.sort();
    disks
}

/// Bytes read and written, summed over devices, from v1 `blkio.throttle.io_service_bytes`
/// (`MAJ:MIN Read N` lines; the trailing `Total N` is skipped).
pub fn v1_service_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut written) = (0, 0);
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(_dev), Some(op), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let n: u64 = n.parse().unwrap_or(0);
        match op {
            "Read" => read += n,
            "Write" => written += n,
            _ => {}
        }
    }
    (read, written)
}

/// Bytes read and written, summed over devices, from v2 `io.stat`
/// (`MAJ:MIN rbytes=N wbytes=N rios=N ...`).
pub fn v2_io_stat(text: &str) -> (u64, u64) {
    let (mut read, mut written) = (0, 0);
    for field in text.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let n: u64 = value.parse().unwrap_or(0);
        match key {
            "rbytes" => read += n,
            "wbytes" => written += n,
            _ => {}
        }
    }
    (read, written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_v1_counters() {
        let text = "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Total 12288\n\
                    8:0 Read 1\n8:0 Write 2\nTotal 12291\n";
        assert_eq!(v1_service_bytes(text), (4097, 8194));
    }

    #[test]
    fn sums_v2_counters() {
        let text = "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
                    8:0 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n";
        assert_eq!(v2_io_stat(text), (4097, 8194));
    }

    #[test]
    fn lists_this_machines_disks() {
        for disk in disks() {
            let (major, minor) = disk.split_once(':').expect("MAJ:MIN");
            assert!(
                major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok(),
                "{disk}"
            );
        }
    }
}
