//! Bounded output capture: the head and the tail of what a command printed, with the count of
//! what was dropped in between, so a command printing a gigabyte costs a fixed amount of memory.

use crate::result::CapturedOutput;
use std::collections::VecDeque;

/// Accumulates output as it arrives.
pub(crate) struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_limit: usize,
    tail_limit: usize,
    dropped: u64,
}

impl Capture {
    pub fn new(limit_bytes: usize) -> Self {
        let head_limit = limit_bytes / 2;
        Capture {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_limit,
            tail_limit: limit_bytes - head_limit,
            dropped: 0,
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        let room = self.head_limit.saturating_sub(self.head.len());
        let take = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..take]);
        bytes = &bytes[take..];
        if bytes.len() > self.tail_limit {
            let skip = bytes.len() - self.tail_limit;
            self.dropped += (self.tail.len() + skip) as u64;
            self.tail.clear();
            bytes = &bytes[skip..];
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_limit);
        self.tail.drain(..overflow);
        self.dropped += overflow as u64;
        self.tail.extend(bytes);
    }

    pub fn finish(self) -> CapturedOutput {
        let tail: Vec<u8> = self.tail.into();
        CapturedOutput {
            head: String::from_utf8_lossy(&self.head).into_owned(),
            tail: String::from_utf8_lossy(&tail).into_owned(),
            truncated_bytes: self.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut c = Capture::new(100);
        c.push(b"hello ");
        c.push(b"world");
        let out = c.finish();
        assert_eq!(out.text(), "hello world");
        assert_eq!(out.truncated_bytes, 0);
    }

    #[test]
    fn large_output_keeps_head_and_tail() {
        let mut c = Capture::new(10);
        for chunk in [&b"abcdefgh"[..], b"ijklmnop", b"qrstuvwxyz"] {
            c.push(chunk);
        }
        let out = c.finish();
        assert_eq!(out.head, "abcde");
        assert_eq!(out.tail, "vwxyz");
        assert_eq!(out.truncated_bytes, 26 - 10);
        assert!(out.text().contains("16 bytes of output truncated"));
    }

    #[test]
    fn one_huge_chunk() {
        let mut c = Capture::new(4);
        c.push(&[b'x'; 1000]);
        let out = c.finish();
        assert_eq!(out.head.len() + out.tail.len(), 4);
        assert_eq!(out.truncated_bytes, 996);
    }
}
