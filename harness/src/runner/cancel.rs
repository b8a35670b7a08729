//! A cancellation signal every running sandbox watches: one socket pair whose read end becomes
//! readable, once and for all, when the run is cancelled. Writing to it is async-signal-safe, so
//! a signal handler (e.g. `signal_hook::low_level::pipe`) can trigger it directly.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

#[derive(Debug)]
pub struct Cancel {
    read: UnixStream,
    write: UnixStream,
}

impl Cancel {
    pub fn new() -> std::io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        write.set_nonblocking(true)?;
        Ok(Cancel { read, write })
    }

    /// Cancels every run watching this token.
    pub fn trigger(&self) {
        // A full buffer means it was already triggered.
        let _ = (&self.write).write(&[1]);
    }

    /// A handle a signal handler may write to (see `signal_hook::low_level::pipe::register`).
    pub fn trigger_handle(&self) -> std::io::Result<UnixStream> {
        self.write.try_clone()
    }

    /// Another handle on the same token: cancelling either cancels both.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Cancel {
            read: self.read.try_clone()?,
            write: self.write.try_clone()?,
        })
    }

    pub fn is_cancelled(&self) -> bool {
        let mut fds = [nix::poll::PollFd::new(
            self.read.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}
