"""Drives `cargo-sandbox exec -- bash` through a real pseudo-terminal, as a person would:
runs `ps aux`, interrupts a `sleep` with Ctrl-C (which must reach the shell, not the runner),
and leaves with `exit 7`. Prints what it saw; exits non-zero when something is off.
Usage: python3 interactive.py CARGO_SANDBOX"""
import os
import pty
import select
import sys
import time

binary = sys.argv[1]
env = dict(os.environ, PS1="SBX$ ", TERM="dumb")
pid, fd = pty.fork()
if pid == 0:
    os.execve(binary, [binary, "exec", "--", "bash", "--norc", "--noprofile", "-i"], env)

seen = b""


def read_until(token, timeout=20.0):
    global seen
    deadline = time.time() + timeout
    start = len(seen)
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if token in seen[start:]:
                return seen[start:]
    sys.exit(f"timed out waiting for {token!r}; saw:\n{seen.decode(errors='replace')}")


read_until(b"SBX$ ")
os.write(fd, b"ps aux\n")
listing = read_until(b"SBX$ ").decode(errors="replace")
processes = [l for l in listing.splitlines() if l.startswith("root ")]
print("ps:", [l.split()[10] for l in processes])
os.write(fd, b"sleep 100\n")
time.sleep(1.0)
os.write(fd, b"\x03")
read_until(b"SBX$ ")
print("ctrl-c reached the shell")
os.write(fd, b"exit 7\n")
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
print("exit code:", code)
ok = code == 7 and [l.split()[10] for l in processes][:2] == ["sandbox-init", "bash"] and len(processes) == 3
sys.exit(0 if ok else 1)
