//! A container's log: stdout and stderr as they arrive, readable whole, as
//! a tail, or followed until the container ends.

use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

#[derive(Default)]
struct Inner {
    bytes: Vec<u8>,
    done: bool,
}

/// The log of one pod's container.
pub(crate) struct LogBuffer {
    inner: Mutex<Inner>,
    /// Bumped on every append and at the end, for followers to wait on.
    changed: watch::Sender<u64>,
}

impl LogBuffer {
    pub fn new() -> Self {
        LogBuffer { inner: Mutex::new(Inner::default()), changed: watch::Sender::new(0) }
    }

    pub fn append(&self, bytes: &[u8]) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).bytes.extend_from_slice(bytes);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Marks the container ended: followers stop after the last bytes.
    pub fn finish(&self) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).done = true;
        self.changed.send_modify(|n| *n += 1);
    }

    /// Everything so far.
    pub fn contents(&self) -> Vec<u8> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).bytes.clone()
    }

    /// Bytes from `offset` on, and whether the container has ended.
    pub fn read_from(&self, offset: usize) -> (Vec<u8>, bool) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (inner.bytes.get(offset..).unwrap_or_default().to_vec(), inner.done)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// The last `n` lines of `bytes` (a final line without a newline counts).
pub(crate) fn tail(bytes: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &bytes[i + 1..];
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_counts_lines_from_the_end() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 1), b"c");
        assert_eq!(tail(b"a\n", 5), b"a\n");
        assert_eq!(tail(b"a\n", 0), b"");
    }
}
