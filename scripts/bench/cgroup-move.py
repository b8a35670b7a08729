#!/usr/bin/env python3
"""How long a move into a cgroup v1 takes after a pause, two ways (as root, on a v1 `pids`
hierarchy): the PID written to `cgroup.procs` (the kernel takes its threadgroup lock for
writing, and its first use after a pause waits for an RCU grace period), and `0` written to
`tasks` by the moving thread itself (no such lock). The second is how a sandbox's init enters
its cgroup on v1 (`harness/src/cgroup/mod.rs`, `Entry::MoveSelf`).

    sudo scripts/bench/cgroup-move.py [ROUNDS]

Makes two cgroups under this process's own `pids` cgroup, moves between them every 0.2 s,
and removes them again.
"""
import os
import statistics
import sys
import time

ROOT = "/sys/fs/cgroup/pids"


def own_pids_dir():
    for line in open("/proc/self/cgroup"):
        _, controllers, path = line.rstrip("\n").split(":", 2)
        if "pids" in controllers.split(","):
            return ROOT + path.rstrip("/")
    sys.exit("no cgroup v1 pids hierarchy: this probe is for cgroup v1")


def move(directory, how):
    started = time.perf_counter()
    if how == "tasks, 0":
        with open(directory + "/tasks", "w") as f:
            f.write("0")
    else:
        with open(directory + "/cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
    return (time.perf_counter() - started) * 1000


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    home = own_pids_dir()
    dirs = [f"{home}/cargo-sandbox-move-probe.{os.getpid()}.{n}" for n in "ab"]
    for d in dirs:
        os.mkdir(d)
    times = {"cgroup.procs, PID": [], "tasks, 0": []}
    try:
        for i in range(rounds):
            for how, spent in times.items():
                time.sleep(0.2)
                spent.append(move(dirs[i % 2], how))
    finally:
        with open(home + "/cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
        for d in dirs:
            os.rmdir(d)
    print(f"first move after 0.2 s, {rounds} rounds")
    for how, spent in times.items():
        print(f"  {how:18} median {statistics.median(spent):7.3f} ms   max {max(spent):7.3f} ms")


if __name__ == "__main__":
    main()
