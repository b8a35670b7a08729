//! The device policy: the only device nodes a sandbox may create or open are the character
//! devices of its minimal `/dev` (and its own pseudo-terminals). Enforced by the cgroup where the
//! runner may: `devices.allow`/`devices.deny` on cgroup v1, a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program on v2. In a user namespace the kernel already refuses device nodes on every mount the
//! sandbox can make, so there the cgroup program is not needed (and could not be loaded).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The character devices of the sandbox's `/dev`: name, major, minor.
pub const NODES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Beyond [`NODES`]: `/dev/ptmx` (5:2) and the devpts pseudo-terminals (136-143:*), which the
/// sandbox's own devpts instance hands out.
const PTMX: (u32, u32) = (5, 2);
const PTS_MAJORS: std::ops::RangeInclusive<u32> = 136..=143;

/// cgroup v1 `devices.allow` lines, written after `a` to `devices.deny`.
pub fn v1_allow_rules() -> Vec<String> {
    NODES
        .iter()
        .map(|(_, major, minor)| format!("c {major}:{minor} rwm"))
        .chain(std::iter::once(format!("c {}:{} rwm", PTMX.0, PTMX.1)))
        .chain(PTS_MAJORS.map(|major| format!("c {major}:* rwm")))
        .collect()
}

/// A loaded cgroup device program (v2), attached to each sandbox's cgroup before the sandbox
/// starts. The attachment holds its own reference: the program stays in force until the cgroup
/// is removed.
#[derive(Debug)]
pub struct DeviceProgram(OwnedFd);

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Our program runs in addition to any an ancestor attached: it can only narrow.
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// `r{dst} = *(u32 *)(r{src} + off)`
const fn load_word(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x61, dst, src, off, 0)
}
/// `r{dst} &= imm`
const fn and(dst: u8, imm: i32) -> Insn {
    insn(0x57, dst, 0, 0, imm)
}
/// `if r{dst} != imm goto +off`
const fn jump_unless(dst: u8, imm: i32, off: i16) -> Insn {
    insn(0x55, dst, 0, off, imm)
}
/// `r0 = imm; exit`
const fn verdict(allow: bool) -> [Insn; 2] {
    [insn(0xb7, 0, 0, 0, allow as i32), insn(0x95, 0, 0, 0, 0)]
}

/// The program: allow a character device on the list, deny everything else. Its context is
/// `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`, the device type in
/// the low 16 bits of `access_type`.
fn program() -> Vec<Insn> {
    let mut rules = Vec::new();
    let exact = NODES.iter().map(|(_, ma, mi)| (*ma, Some(*mi)));
    let any_minor = PTS_MAJORS.map(|major| (major, None));
    for (major, minor) in exact
        .chain(std::iter::once((PTMX.0, Some(PTMX.1))))
        .chain(any_minor)
    {
        match minor {
            Some(minor) => {
                rules.push(jump_unless(3, major as i32, 3));
                rules.push(jump_unless(4, minor as i32, 2));
            }
            None => rules.push(jump_unless(3, major as i32, 2)),
        }
        rules.extend(verdict(true));
    }
    let mut code = vec![
        load_word(2, 1, 0),
        and(2, 0xffff),
        load_word(3, 1, 4),
        load_word(4, 1, 8),
    ];
    // Not a character device: straight to the denial after the rules.
    code.push(jump_unless(2, BPF_DEVCG_DEV_CHAR, rules.len() as i16));
    code.extend(rules);
    code.extend(verdict(false));
    code
}

fn bpf(cmd: libc::c_long, attr: &[u64]) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a zero-padded `union bpf_attr` prefix the kernel reads `size` bytes of.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_ptr(),
            std::mem::size_of_val(attr) as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl DeviceProgram {
    /// Loads the program (needs CAP_SYS_ADMIN or CAP_BPF).
    pub fn load() -> io::Result<DeviceProgram> {
        let code = program();
        let license = c"GPL";
        // union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt (u32 each), insns, license (u64),
        // then log fields left zero.
        let mut attr = [0u64; 16];
        attr[0] = u64::from(BPF_PROG_TYPE_CGROUP_DEVICE) | ((code.len() as u64) << 32);
        attr[1] = code.as_ptr() as u64;
        attr[2] = license.as_ptr() as u64;
        let fd = bpf(BPF_PROG_LOAD, &attr)?;
        // SAFETY: a fresh program descriptor nothing else owns.
        Ok(DeviceProgram(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    /// Attaches the program to the cgroup whose directory `cgroup` is open on.
    pub fn attach(&self, cgroup: RawFd) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // union bpf_attr for BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type,
        // attach_flags (u32 each).
        let mut attr = [0u64; 3];
        attr[0] = (cgroup as u32 as u64) | ((self.0.as_raw_fd() as u32 as u64) << 32);
        attr[1] = u64::from(BPF_CGROUP_DEVICE) | (u64::from(BPF_F_ALLOW_MULTI) << 32);
        bpf(BPF_PROG_ATTACH, &attr).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_land_inside_the_program() {
        let code = program();
        for (i, insn) in code.iter().enumerate() {
            if insn.code == 0x55 {
                let target = i as i64 + 1 + i64::from(insn.off);
                assert!(target < code.len() as i64 - 1, "insn {i} jumps to {target}");
            }
        }
        assert_eq!(code.last().map(|i| i.code), Some(0x95));
    }

    #[test]
    fn v1_rules_cover_the_nodes_and_terminals() {
        let rules = v1_allow_rules();
        assert!(rules.contains(&"c 1:3 rwm".to_owned()));
        assert!(rules.contains(&"c 136:* rwm".to_owned()));
        assert!(rules.iter().all(|r| r.starts_with("c ")), "no block device");
    }
}
