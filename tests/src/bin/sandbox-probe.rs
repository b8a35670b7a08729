//! A misbehaving program for the engine's end-to-end tests. Everything harmful refuses to run
//! unless PID 1 is cargo-sandbox's init, i.e. unless it is inside a sandbox with caps.
//!
//! Usage: sandbox-probe <behaviour> [args] [token]; the trailing token only marks the processes
//! so tests can look for survivors on the host.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let code = match arg(0) {
        "touch" => touch(arg(1).parse().expect("MiB")),
        "hog" => guarded(hog),
        "burn" => burn(Duration::from_millis(arg(1).parse().expect("ms"))),
        "daemon" => guarded(daemon),
        "forkbomb" => guarded(fork_bomb),
        "ignore-term" => guarded(ignore_term),
        "net" => guarded(network),
        "loopback" => loopback(),
        "network-state" => network_state(),
        "lo-mtu" => guarded(lo_mtu),
        other => {
            eprintln!("sandbox-probe: unknown behaviour `{other}`");
            2
        }
    };
    std::process::exit(code);
}

fn inside_sandbox() -> bool {
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "sandbox-init")
}

fn guarded(f: fn() -> i32) -> i32 {
    if !inside_sandbox() {
        eprintln!("sandbox-probe: refusing to run outside a cargo-sandbox sandbox");
        return 3;
    }
    f()
}

/// `bytes` of memory with every page written, so all of it is resident.
fn resident(bytes: usize) -> Vec<u8> {
    let mut block = vec![0u8; bytes];
    for i in (0..block.len()).step_by(4096) {
        block[i] = 1;
    }
    std::hint::black_box(block)
}

/// Allocates `mib` MiB and writes every page, so all of it is resident.
fn touch(mib: usize) -> i32 {
    drop(resident(mib << 20));
    0
}

/// Tries to make 4 GiB resident, a MiB at a time; the memory cap must stop it.
fn hog() -> i32 {
    let mut blocks = Vec::new();
    for _ in 0..4096 {
        blocks.push(resident(1 << 20));
    }
    println!("allocated {} MiB", blocks.len());
    0
}

/// Spins until this process has used `cpu` of CPU time.
fn burn(cpu: Duration) -> i32 {
    let mut x = 0u64;
    while process_cpu() < cpu {
        for i in 0..10_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
    }
    0
}

fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn fork() -> libc::pid_t {
    // SAFETY: this program is single-threaded; the children only sleep or exit.
    unsafe { libc::fork() }
}

fn sleep_forever() -> ! {
    loop {
        // SAFETY: pause has no preconditions.
        unsafe { libc::pause() };
    }
}

/// The classic double fork: a `setsid` grandchild that outlives everything.
fn daemon() -> i32 {
    match fork() {
        0 => {
            // SAFETY: plain syscalls in a single-threaded child.
            unsafe { libc::setsid() };
            if fork() == 0 {
                sleep_forever();
            }
            // SAFETY: leave without running anything else.
            unsafe { libc::_exit(0) }
        }
        pid => {
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            println!("daemon started");
            0
        }
    }
}

/// Forks sleeping children until the pids cap refuses, keeps trying a while, then exits.
fn fork_bomb() -> i32 {
    let (mut made, mut refused) = (0u32, 0u32);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) && refused < 200 {
        match fork() {
            0 => sleep_forever(),
            -1 => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            _ => made += 1,
        }
    }
    println!("forked {made}, refused {refused}");
    0
}

/// A process tree where everyone ignores SIGTERM and sleeps: only SIGKILL ends it.
fn ignore_term() -> i32 {
    // SAFETY: setting a disposition to SIG_IGN.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    for _ in 0..2 {
        if fork() == 0 {
            // SAFETY: plain syscall in a single-threaded child.
            unsafe { libc::setsid() };
            sleep_forever();
        }
    }
    println!("ignoring SIGTERM");
    let _ = std::io::stdout().flush();
    sleep_forever();
}

/// Tries to reach a documentation address (192.0.2.1, RFC 5737), but only after checking this
/// network namespace has no route at all, so no packet can leave the machine.
fn network() -> i32 {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    if routes.lines().skip(1).any(|l| !l.trim().is_empty()) {
        eprintln!("sandbox-probe: this namespace has routes; not trying the network");
        return 3;
    }
    let start = Instant::now();
    let target: SocketAddr = "192.0.2.1:80".parse().expect("literal");
    let result = TcpStream::connect_timeout(&target, Duration::from_secs(5));
    println!(
        "connect: {:?} after {:?}",
        result.err().map(|e| e.to_string()),
        start.elapsed()
    );
    0
}

/// What this network namespace holds and has counted: `tw=N inuse=N no_route=N lo_packets=N`
/// (TCP sockets in TIME_WAIT and in use, from sockstat; IPv4 packets that found no route, from
/// snmp; packets `lo` received, from /proc/net/dev).
fn network_state() -> i32 {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let tcp: Vec<&str> = sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let after = |key: &str| {
        tcp.iter()
            .position(|w| *w == key)
            .and_then(|i| tcp.get(i + 1))
            .copied()
            .unwrap_or("?")
    };
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let no_route = match (ip.next(), ip.next()) {
        (Some(names), Some(values)) => names
            .split_whitespace()
            .position(|n| n == "OutNoRoutes")
            .and_then(|i| values.split_whitespace().nth(i))
            .unwrap_or("?")
            .to_owned(),
        _ => "?".to_owned(),
    };
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    let lo_packets = dev
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("lo:"))
        .and_then(|counters| counters.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_owned();
    println!(
        "tw={} inuse={} no_route={no_route} lo_packets={lo_packets}",
        after("tw"),
        after("inuse")
    );
    0
}

/// Prints `lo`'s MTU; with an argument, first sets it to that (needs CAP_NET_ADMIN: a
/// `--privileged` sandbox), a change that leaves no socket and no counter behind.
fn lo_mtu() -> i32 {
    // SAFETY: a plain datagram socket, used for two interface ioctls and closed on return.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        eprintln!("sandbox-probe: socket: {}", std::io::Error::last_os_error());
        return 1;
    }
    // SAFETY: an all-zero ifreq is a valid value; the name is NUL-terminated.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    let set = std::env::args()
        .nth(2)
        .and_then(|mtu| mtu.parse::<i32>().ok());
    let mut code = 0;
    if let Some(mtu) = set {
        req.ifr_ifru.ifru_mtu = mtu;
        // SAFETY: SIOCSIFMTU reads the ifreq it is given.
        if unsafe { libc::ioctl(fd, libc::SIOCSIFMTU as _, &req) } != 0 {
            eprintln!(
                "sandbox-probe: SIOCSIFMTU: {}",
                std::io::Error::last_os_error()
            );
            code = 1;
        }
    }
    // SAFETY: SIOCGIFMTU writes the MTU into the ifreq it is given.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFMTU as _, &mut req) } == 0 {
        // SAFETY: SIOCGIFMTU filled the union's MTU field.
        println!("{}", unsafe { req.ifr_ifru.ifru_mtu });
    } else {
        code = 1;
    }
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    code
}

/// Talks to itself over 127.0.0.1.
fn loopback() -> i32 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut client = TcpStream::connect(addr).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    client.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).expect("read");
    println!("loopback: {}", String::from_utf8_lossy(&buf));
    0
}
