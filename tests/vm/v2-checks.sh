#!/bin/sh
# Runs inside the pure cgroup v2 VM (../shared/vm/run-in-v2-vm.sh), in a directory holding
# cargo-sandbox and sandbox-probe. Writes one JSON result per scenario next to itself; the Rust
# test `tests/tests/cgroup_v2_vm.rs` checks them.
set -u
S=./cargo-sandbox
P=./sandbox-probe
T=vmtoken

run() { name=$1; shift; $S exec --json-file "$name.json" "$@" > "$name.out" 2>&1; echo $? > "$name.rc"; }

run forkbomb --pids 32 -- $P forkbomb $T
run hog --memory 64M -- $P hog
run touch --memory 512M -- $P touch 100
run burn -- $P burn 1000
run daemon -- $P daemon $T
run net -- $P net
run timeout --timeout 2s --grace 500ms -- $P ignore-term $T
run quota --cpus 0.5 -- $P burn 300
# Only its own cgroup, read-only, at /sys/fs/cgroup.
./cargo-sandbox exec --memory 96M -- sh -c 'cat /sys/fs/cgroup/memory.max; (echo max > /sys/fs/cgroup/memory.max) 2>/dev/null && echo raised || echo read-only' > cgview.out 2>&1

# The device allowlist (a BPF program): even privileged, on a tmpfs without nodev, no block
# device node; a character device of the list works.
./cargo-sandbox exec --json-file devices.json --privileged -- sh -c '
  mkdir /tmp/d && mount -t tmpfs t /tmp/d || exit 3
  mknod /tmp/d/disk b 8 0 2>/dev/null && echo disk-made || echo disk-refused
  mknod /tmp/d/null c 1 3 && echo x > /tmp/d/null && echo null-works' > devices.out 2>&1
# IO accounting with the io controller (this VM has no disk: the figures exist, and are 0).
run io --io-write-bps 1M -- true
# --userns: root inside is nobody outside (the host filesystem: this kernel has no overlayfs).
mkdir -p /var/uns && chown 65534:65534 /var/uns
./cargo-sandbox exec --json-file userns.json --userns -- \
  sh -c 'id -u; touch /var/uns/made-inside' > userns.out 2>&1
stat -c '%u:%g' /var/uns/made-inside > userns-owner.txt 2>&1

# Sandboxes made ahead (zygote, pooled network namespaces, spare cgroups), as in a test run.
./engine-batch ./sandbox-probe > batch.out 2>batch.err

# Nothing may survive, and no cgroup of ours may remain.
for p in /proc/[0-9]*; do
  grep -q "vm[t]oken" "$p/cmdline" 2>/dev/null && echo "${p#/proc/}"
done > survivors.txt
find /sys/fs/cgroup -name 'cargo-sandbox*' > leftover-cgroups.txt

# A runner alone in a nested cgroup (as under `systemd-run --scope -p Delegate=yes`): it moves
# itself into a leaf, delegates, and restores the cgroup as it found it.
mkdir -p /sys/fs/cgroup/ci.slice/runner
echo "+memory +pids +cpu" > /sys/fs/cgroup/ci.slice/cgroup.subtree_control
sh -c 'echo $$ > /sys/fs/cgroup/ci.slice/runner/cgroup.procs;
       exec ./cargo-sandbox exec --json-file nested.json --memory 64M --pids 16 -- ./sandbox-probe hog' \
  > nested.out 2>&1
echo $? > nested.rc
sh -c 'echo $$ > /sys/fs/cgroup/ci.slice/runner/cgroup.procs;
       exec ./cargo-sandbox exec --io-write-bps 1M -- true' > nested-io.out 2>&1
echo $? > nested-io.rc
cat /sys/fs/cgroup/ci.slice/runner/cgroup.subtree_control > nested-subtree.txt
find /sys/fs/cgroup/ci.slice -name 'cargo-sandbox*' > nested-leftovers.txt

# A runner sharing its cgroup with other processes: a clear error, nothing changed.
sh -c 'echo $$ > /sys/fs/cgroup/ci.slice/runner/cgroup.procs; sleep 60 & ./cargo-sandbox exec -- true > shared.out 2>&1; echo $? > shared.rc; kill $!'
find /sys/fs/cgroup/ci.slice -name 'cargo-sandbox*' > shared-leftovers.txt

# The same shared runner, given an empty cgroup to put sandboxes under: it works.
mkdir -p /sys/fs/cgroup/sandbox-parent
sh -c 'echo $$ > /sys/fs/cgroup/ci.slice/runner/cgroup.procs; sleep 60 &
       ./cargo-sandbox exec --json-file parent.json --cgroup-parent /sys/fs/cgroup/sandbox-parent \
         --pids 16 -- ./sandbox-probe forkbomb vmtoken > parent.out 2>&1; echo $? > parent.rc; kill $!'
find /sys/fs/cgroup/sandbox-parent -name 'cargo-sandbox*' > parent-leftovers.txt
for p in /proc/[0-9]*; do
  grep -q "vm[t]oken" "$p/cmdline" 2>/dev/null && echo "${p#/proc/}"
done > survivors-at-end.txt

# Rootless on pure v2: root delegates a subtree to uid 1000 and starts the runner in a leaf of
# it (as `systemd-run --user --scope -p Delegate=yes` would); the runner maps itself to root in a
# user namespace and caps its sandboxes with the delegated controllers.
mkdir -p /sys/fs/cgroup/user-sbx/runner
chown -R 1000:1000 /sys/fs/cgroup/user-sbx
cat /proc/sys/kernel/unprivileged_userns_clone > rootless-userns.txt 2>/dev/null
sh -c 'echo $$ > /sys/fs/cgroup/user-sbx/runner/cgroup.procs;
       exec /opt/setpriv --reuid 1000 --regid 1000 --clear-groups env -i PATH=/bin:/usr/bin HOME=/tmp \
         ./cargo-sandbox exec --json-file /tmp/rootless.json --cgroup-parent /sys/fs/cgroup/user-sbx \
         --memory 64M -- ./sandbox-probe hog' > rootless.out 2>&1
echo $? > rootless.rc
cp /tmp/rootless.json rootless.json 2>/dev/null
find /sys/fs/cgroup/user-sbx -name 'cargo-sandbox*' > rootless-leftovers.txt
echo done > finished.txt
