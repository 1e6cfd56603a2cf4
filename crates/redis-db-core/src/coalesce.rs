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

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream whose writes yield to the runtime once per flush before they go out.
pub(crate) struct Coalescing<S> {
    inner: S,
    /// Set when this flush has yielded once; cleared when the flush completes.
    yielded: bool,
}

impl<S> Coalescing<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            yielded: false,
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
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if flushed.is_ready() {
            self.yielded = false;
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
        assert!(!near.yielded, "a completed flush re-arms the yield");
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
