//! Implicit pipelining for the shared connection.
//!
//! The shared connection's driver (redis-rs's) writes whatever callers queued the moment its
//! queue runs dry. With TCP_NODELAY every such write is its own TCP segment, and on a busy
//! runtime the queue runs dry after almost every command: the callers woken by one batch of
//! replies run one after another, and each of them wakes the driver, which sends that caller's
//! command alone. Without TCP_NODELAY the kernel's Nagle algorithm hides this by holding small
//! writes until the previous ones are acknowledged; measured on loopback at 16 tasks that gave
//! 0.43 segments per command against 1.3 with TCP_NODELAY, and about a third less CPU per
//! command in client and server (docs/PERFORMANCE.md).
//!
//! [`Coalescing`] gets the same batching without Nagle's wait for an acknowledgement: the first
//! write of each flush yields once to the runtime (the driver task wakes itself and goes to the
//! back of its worker's queue), so the callers that are already runnable queue their commands
//! first, and one write carries them all. On an idle runtime the driver is polled again at once:
//! the cost is one extra poll per batch, no timer and no added wait.
//!
//! A lone caller gains nothing from the yield (nobody else queues a command meanwhile), so when
//! yields gather nothing, the next flushes write at once: after 1, 2, 3 such yields in a row,
//! 1, 3, 7 flushes go out unyielded before the next try. One yield that gathers resets it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream whose writes yield to the runtime once per flush before they go out.
pub(crate) struct Coalescing<S> {
    inner: S,
    flush: Flush,
    /// Yields in a row that gathered nothing (capped).
    misses: u32,
    /// Flushes still to write without yielding.
    skip: u32,
}

/// Where the current flush is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    /// Nothing written since the last completed flush.
    Fresh,
    /// Yielded with this many bytes waiting.
    Yielded(usize),
    /// Writing; no more yields until the flush completes.
    Writing,
}

const MAX_MISSES: u32 = 3;

impl<S> Coalescing<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            flush: Flush::Fresh,
            misses: 0,
            skip: 0,
        }
    }

    /// Whether this write should yield first; learns from what the last yield gathered.
    fn yields_before(&mut self, waiting: usize) -> bool {
        match self.flush {
            Flush::Fresh if self.skip > 0 => {
                self.skip -= 1;
                self.flush = Flush::Writing;
                false
            }
            Flush::Fresh => {
                self.flush = Flush::Yielded(waiting);
                true
            }
            Flush::Yielded(before) => {
                if waiting > before {
                    self.misses = 0;
                } else {
                    self.misses = (self.misses + 1).min(MAX_MISSES);
                    self.skip = (1 << self.misses) - 1;
                }
                self.flush = Flush::Writing;
                false
            }
            Flush::Writing => false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalescing<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalescing<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.yields_before(buf.len()) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if flushed.is_ready() {
            self.flush = Flush::Fresh;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Two writes queued before the first flush completes reach the peer as one read.
    #[tokio::test]
    async fn a_flush_yields_once_and_then_writes_everything() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut near = Coalescing::new(near);
        near.write_all(b"PING\r\n").await.unwrap();
        near.flush().await.unwrap();
        let mut buf = [0u8; 16];
        let n = far.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"PING\r\n");
        assert_eq!(
            near.flush,
            Flush::Fresh,
            "a completed flush re-arms the yield"
        );
    }

    /// One flush as the driver makes it: `first` bytes when it starts, `then` after the yield.
    fn flush(near: &mut Coalescing<tokio::io::DuplexStream>, first: usize, then: usize) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let yielded = Pin::new(&mut *near)
            .poll_write(&mut cx, &vec![b'x'; first])
            .is_pending();
        let size = if yielded { then } else { first };
        assert!(Pin::new(&mut *near)
            .poll_write(&mut cx, &vec![b'x'; size])
            .is_ready());
        assert!(Pin::new(&mut *near).poll_flush(&mut cx).is_ready());
        yielded
    }

    #[test]
    fn a_lone_writer_stops_yielding_and_a_busy_one_keeps_yielding() {
        let (near, _far) = tokio::io::duplex(1 << 20);
        let mut near = Coalescing::new(near);
        // Nothing gathered by the yields: each is followed by 1, 3, then 7 (capped) flushes
        // written at once.
        let lone: String = (0..20)
            .map(|_| if flush(&mut near, 10, 10) { 'y' } else { '.' })
            .collect();
        assert_eq!(lone, "y.y...y.......y.....");
        // Skipped flushes first, then a yield that gathers: from then on every flush yields.
        let busy: String = (0..6)
            .map(|_| if flush(&mut near, 10, 30) { 'y' } else { '.' })
            .collect();
        assert_eq!(busy, "..yyyy");
    }

    #[test]
    fn the_first_write_of_a_flush_is_pending_and_wakes_its_task() {
        let (near, _far) = tokio::io::duplex(1024);
        let mut near = Coalescing::new(near);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut near).poll_write(&mut cx, b"x").is_pending());
        assert!(matches!(
            Pin::new(&mut near).poll_write(&mut cx, b"x"),
            Poll::Ready(Ok(1))
        ));
    }
}
