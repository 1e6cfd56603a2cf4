//! A fault-injecting TCP proxy for the chaos suite: pass-through, reset every connection,
//! black-hole (accept and keep connections but forward nothing), and delay.
//!
//! It runs on a runtime of its own (a dedicated thread), so that the tasks of the runtime under
//! test are the SDK's and the test's only, and so that a blocking controller thread can drive it.
//! Forwarding uses `readable()`/`try_read()` and `writable()`/`try_write()` (tokio's `net`
//! feature only).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways at once.
    Pass,
    /// Accept and keep connections, forward nothing (a network partition). When the mode ends,
    /// held data flows again, as after a healed partition.
    BlackHole,
    /// Forward each chunk after this delay.
    Delay(Duration),
    /// Reset (RST) every new connection at once.
    Refuse,
}

struct Shared {
    mode: watch::Sender<Mode>,
    /// Bumped by `reset_all`: every live connection resets itself when it sees a new value.
    resets: watch::Sender<u64>,
    live: AtomicUsize,
    accepted: AtomicU64,
    upstream: SocketAddr,
}

/// A running proxy to `upstream`. Dropping it stops it and closes every connection.
pub struct Proxy {
    shared: Arc<Shared>,
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("chaos-proxy")
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("proxy listener");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            mode: watch::channel(Mode::Pass).0,
            resets: watch::channel(0).0,
            live: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
        });
        runtime.spawn(accept_loop(listener, shared.clone()));
        Proxy {
            shared,
            port,
            runtime: Some(runtime),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<proxy port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.shared.mode.borrow()
    }

    /// Resets (RST, linger 0) every connection open now, both sides.
    pub fn reset_all(&self) {
        self.shared.resets.send_modify(|n| *n += 1);
    }

    /// Client connections open through the proxy now.
    pub fn live_connections(&self) -> usize {
        self.shared.live.load(Ordering::Acquire)
    }

    /// Client connections accepted since the start.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.live.fetch_add(1, Ordering::AcqRel);
            serve(client, &shared).await;
            shared.live.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// Closes with RST rather than FIN, as a crashed peer or a middlebox would.
fn reset(stream: TcpStream) {
    let _ = redis::io::tcp::socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn serve(client: TcpStream, shared: &Shared) {
    let _ = client.set_nodelay(true);
    let mut resets = shared.resets.subscribe();
    resets.borrow_and_update();
    let mut mode = shared.mode.subscribe();
    if *mode.borrow_and_update() == Mode::Refuse {
        reset(client);
        return;
    }
    // Black-holed: keep the client waiting, connect upstream only when the partition heals.
    if !wait_while_black_holed(&mut mode, &mut resets).await {
        reset(client);
        return;
    }
    let upstream = tokio::select! {
        connected = TcpStream::connect(shared.upstream) => match connected {
            Ok(upstream) => upstream,
            // The server is down: the client sees its connection reset, as with no proxy.
            Err(_) => return reset(client),
        },
        _ = resets.changed() => return reset(client),
    };
    let _ = upstream.set_nodelay(true);
    let outcome = tokio::select! {
        outcome = pump(&client, &upstream, shared) => outcome,
        outcome = pump(&upstream, &client, shared) => outcome,
        _ = resets.changed() => Err(()),
    };
    match outcome {
        Ok(()) => {}
        Err(()) => {
            reset(client);
            reset(upstream);
        }
    }
}

/// Waits while the mode is black-hole; false when a reset came meanwhile.
async fn wait_while_black_holed(
    mode: &mut watch::Receiver<Mode>,
    resets: &mut watch::Receiver<u64>,
) -> bool {
    loop {
        if *mode.borrow_and_update() != Mode::BlackHole {
            return true;
        }
        tokio::select! {
            changed = mode.changed() => if changed.is_err() { return false },
            _ = resets.changed() => return false,
        }
    }
}

/// Copies `from` to `to` until EOF (`Ok`) or an error (`Err`: reset both).
async fn pump(from: &TcpStream, to: &TcpStream, shared: &Shared) -> Result<(), ()> {
    let mut buffer = vec![0u8; 16 * 1024];
    let mut mode = shared.mode.subscribe();
    let mut resets = shared.resets.subscribe();
    loop {
        // Forward nothing while black-holed: not even read, so the kernel buffers fill up.
        if !wait_while_black_holed(&mut mode, &mut resets).await {
            return Err(());
        }
        from.readable().await.map_err(|_| ())?;
        let n = match from.try_read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return Err(()),
        };
        let delay = match *mode.borrow() {
            Mode::Delay(delay) => Some(delay),
            _ => None,
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        // A partition that starts mid-chunk holds the rest of the chunk too.
        if !wait_while_black_holed(&mut mode, &mut resets).await {
            return Err(());
        }
        let mut sent = 0;
        while sent < n {
            to.writable().await.map_err(|_| ())?;
            match to.try_write(&buffer[sent..n]) {
                Ok(written) => sent += written,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return Err(()),
            }
        }
    }
}
