//! The shared lane's own connection to one node over plain TCP: every caller's command goes
//! into one write buffer, a writer task sends what gathered in one write, and a reader task
//! hands each reply to the caller whose command it answers (replies come in send order).
//!
//! Why not redis-rs's `MultiplexedConnection`, which every other connection still uses: on the
//! hot path it costs every call an mpsc send, a boxed future, a packed-command allocation and
//! its combine-based reply parser, on top of what the SDK itself does per call (breaker,
//! readiness, deadline, statistics), and the SDK's own tokio timer per call for its deadline.
//! Here a call costs one lock to append its bytes and its reply slot, and one oneshot to get its
//! reply back; its deadline waits in the queue beside its slot, and one watchdog timer per
//! connection fails the requests whose deadline passed (`docs/PERFORMANCE.md`, fourth session).
//!
//! What it keeps of redis-rs: commands are packed by `Cmd`/`Pipeline`, replies decode to the
//! same `Value`s (`resp.rs`), the handshake is the same (`HELLO 3` with credentials, `SELECT`,
//! `CLIENT SETINFO`) with the same errors, and a pipeline's replies are gathered the same way
//! (a transaction's queued errors abort it). What it leaves out is what the shared lane never
//! carries: subscriptions, client-side caching, blocking commands.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use redis::{
    Cmd, ErrorKind, Pipeline, RedisConnectionInfo, RedisError, ServerError, ServerErrorKind, Value,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Sleep;

use crate::coalesce::Batching;
use crate::deadline::Deadline;
use crate::lock::lock;
use crate::resp::{self, protocol_error, FrameScan};
use crate::retry;

/// A clone shares the connection; the connection closes when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Multiplexed {
    owner: Arc<Owner>,
}

/// Ends the tasks (and so closes the socket) when the last clone goes.
struct Owner {
    shared: Arc<Shared>,
    tasks: [AbortHandle; 3],
}

impl Drop for Owner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.shared.alive.store(false, Ordering::Release);
    }
}

/// What callers and the three tasks (reader, writer, watchdog) share.
struct Shared {
    state: Mutex<State>,
    /// Cleared when the connection breaks (the lane's check before every send).
    alive: Arc<AtomicBool>,
    db: i64,
}

struct State {
    /// Packed commands not yet taken by the writer.
    out: Vec<u8>,
    /// One entry per request sent or queued, in the order of its bytes in the stream.
    in_flight: VecDeque<InFlight>,
    /// The writer, parked while `out` was empty.
    writer: Option<Waker>,
    /// No request's deadline is before this (`None`: none has one); the watchdog sleeps
    /// until then. A request with an earlier deadline moves it and wakes the watchdog.
    earliest: Option<tokio::time::Instant>,
    watchdog: Option<Waker>,
    /// Set once the connection broke: every later request fails with it at once.
    broken: Option<RedisError>,
}

impl State {
    /// Pushes a reply slot (after its request's bytes); returns the watchdog to wake when
    /// this deadline comes before every other. Inlined: it is on every call's path, and two
    /// arms of `queue` call it.
    #[inline]
    fn wait_for_reply(
        &mut self,
        pipeline: Option<Box<Gathering>>,
        deadline: Option<Deadline>,
    ) -> (Receiving, Option<Waker>) {
        let (reply, receiver) = oneshot::channel();
        self.in_flight.push_back(InFlight {
            reply: Some(reply),
            pipeline,
            deadline,
        });
        let watchdog = match deadline {
            Some(deadline) if self.earliest.is_none_or(|earliest| deadline.at < earliest) => {
                self.earliest = Some(deadline.at);
                self.watchdog.take()
            }
            _ => None,
        };
        (Receiving::Waiting(receiver), watchdog)
    }
}

/// A buffer larger than this is replaced by a small one once it is empty.
const MAX_IDLE_BUFFER: usize = 1 << 20;

type ReplySender = oneshot::Sender<Result<Value, RedisError>>;

struct InFlight {
    /// `None` once its deadline passed: the entry stays, so that its reply, when it comes, is
    /// dropped instead of going to the next request.
    reply: Option<ReplySender>,
    /// `None`: a single command's one reply.
    pipeline: Option<Box<Gathering>>,
    deadline: Option<Deadline>,
}

/// A pipeline's replies as they arrive (redis-rs's rules): `skip` replies are not returned
/// (`MULTI` and the `QUEUED`s of a transaction), then `count` are.
struct Gathering {
    skip: usize,
    count: usize,
    transaction: bool,
    /// Replies seen so far, for the index of a queued error.
    seen: usize,
    values: Vec<Value>,
    /// A transaction's commands the server refused to queue: `EXEC` then aborts it.
    queued_errors: Vec<(usize, ServerError)>,
}

impl Gathering {
    /// Takes one reply; `Some` once the pipeline is complete.
    fn take(&mut self, value: Value) -> Option<Result<Value, RedisError>> {
        self.seen += 1;
        if self.skip > 0 {
            self.skip -= 1;
            if let (true, Value::ServerError(error)) = (self.transaction, value) {
                // Minus this reply and minus MULTI: the index among the queued commands.
                self.queued_errors
                    .push((self.seen.saturating_sub(2), error));
            }
            // Nothing to return after the skipped ones (redis-rs would take the next
            // request's reply as this one's).
            return (self.skip == 0 && self.count == 0).then(|| self.finish());
        }
        self.values.push(value);
        (self.values.len() >= self.count).then(|| self.finish())
    }

    fn finish(&mut self) -> Result<Value, RedisError> {
        if self.queued_errors.is_empty() {
            return Ok(Value::Array(std::mem::take(&mut self.values)));
        }
        Err(aborted_transaction(&self.queued_errors))
    }
}

impl Multiplexed {
    /// Opens the connection on `stream` and runs the handshake that `settings` ask for.
    /// `alive` is cleared the moment the connection breaks or closes.
    pub async fn connect(
        stream: TcpStream,
        settings: &RedisConnectionInfo,
        alive: Arc<AtomicBool>,
    ) -> Result<Multiplexed, RedisError> {
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                out: Vec::with_capacity(4096),
                in_flight: VecDeque::new(),
                writer: None,
                earliest: None,
                watchdog: None,
                broken: None,
            }),
            alive,
            db: settings.db(),
        });
        let reader = tokio::spawn(read_replies(shared.clone(), read)).abort_handle();
        let writer = tokio::spawn(write_requests(shared.clone(), write)).abort_handle();
        let watchdog = tokio::spawn(expire_late_requests(shared.clone())).abort_handle();
        let connection = Multiplexed {
            owner: Arc::new(Owner {
                shared,
                tasks: [reader, writer, watchdog],
            }),
        };
        connection.handshake(settings).await?;
        Ok(connection)
    }

    /// redis-rs's handshake, with its errors: `HELLO 3` (with credentials), `SELECT` unless
    /// database 0, and the library's name and version (whose errors are ignored: servers
    /// before 7.2 do not know `CLIENT SETINFO`).
    async fn handshake(&self, settings: &RedisConnectionInfo) -> Result<(), RedisError> {
        let mut setup = redis::pipe();
        let hello = setup.cmd("HELLO").arg(3);
        if let Some(password) = settings.password() {
            hello
                .arg("AUTH")
                .arg(settings.username().unwrap_or("default"))
                .arg(password);
        }
        if settings.db() != 0 {
            setup.cmd("SELECT").arg(settings.db());
        }
        setup
            .cmd("CLIENT")
            .arg("SETINFO")
            .arg("LIB-NAME")
            .arg("redis-db")
            .cmd("CLIENT")
            .arg("SETINFO")
            .arg("LIB-VER")
            .arg(env!("CARGO_PKG_VERSION"));
        let replies = match self.send_pipeline(&setup, 0, setup.len(), None).await? {
            Value::Array(replies) => replies,
            _ => return Err(protocol_error("the handshake's replies are not a list")),
        };
        if let Some(Value::ServerError(error)) = replies.first() {
            let error = RedisError::from(error.clone());
            if error
                .detail()
                .is_some_and(|detail| detail.starts_with("unknown command `HELLO`"))
            {
                return Err(RedisError::from((
                    ErrorKind::RESP3NotSupported,
                    "Redis Server doesn't support HELLO command therefore resp3 cannot be used",
                )));
            }
            return Err(error);
        }
        if settings.db() != 0 {
            if let Some(Value::ServerError(error)) = replies.get(1) {
                return Err(RedisError::from((
                    ServerErrorKind::ResponseError.into(),
                    "Redis server refused to switch database",
                    error.details().unwrap_or_default().to_owned(),
                )));
            }
        }
        Ok(())
    }

    /// Queues one command; the future resolves to its reply (a server error reply is an
    /// `Ok(Value::ServerError)`, as with redis-rs), or to [`Deadline::passed`].
    pub fn send_command(&self, cmd: &Cmd, deadline: Option<Deadline>) -> Receiving {
        if cmd.args_iter().next().is_none() {
            return Receiving::ready(Err(RedisError::from((ErrorKind::Client, "empty command"))));
        }
        // Nothing answers a no-response command: it gets no slot, or the next reply would go
        // to the wrong caller.
        let expect = if cmd.is_no_response() {
            Expect::Nothing
        } else {
            Expect::One
        };
        self.queue(|out| cmd.write_packed_command(out), expect, deadline)
    }

    /// Queues a pipeline; resolves to `Value::Array` of `count` replies after the first
    /// `offset` (redis-rs's `req_packed_commands`).
    pub fn send_pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
        deadline: Option<Deadline>,
    ) -> Receiving {
        if offset + count == 0 {
            return Receiving::ready(Ok(Value::Array(Vec::new())));
        }
        let packed = pipeline.get_packed_pipeline();
        let gathering = Gathering {
            skip: offset,
            count,
            transaction: pipeline.is_transaction(),
            seen: 0,
            values: Vec::with_capacity(count),
            queued_errors: Vec::new(),
        };
        self.queue(
            |out| out.extend_from_slice(&packed),
            Expect::Pipeline(Box::new(gathering)),
            deadline,
        )
    }

    /// Appends a request's bytes and its reply slot under one lock, so that bytes and slots
    /// stay in the same order; wakes the writer if it was parked, and the watchdog if this
    /// deadline comes first.
    fn queue(
        &self,
        pack: impl FnOnce(&mut Vec<u8>),
        expect: Expect,
        deadline: Option<Deadline>,
    ) -> Receiving {
        let shared = &self.owner.shared;
        let (receiving, writer, watchdog) = {
            let mut state = lock(&shared.state);
            if let Some(error) = &state.broken {
                return Receiving::ready(Err(error.clone()));
            }
            pack(&mut state.out);
            let writer = state.writer.take();
            let (receiving, watchdog) = match expect {
                Expect::Nothing => (Receiving::ready(Ok(Value::Nil)), None),
                Expect::One => state.wait_for_reply(None, deadline),
                Expect::Pipeline(gathering) => state.wait_for_reply(Some(gathering), deadline),
            };
            (receiving, writer, watchdog)
        };
        for task in [writer, watchdog].into_iter().flatten() {
            task.wake();
        }
        receiving
    }

    pub fn db(&self) -> i64 {
        self.owner.shared.db
    }
}

/// What a request expects back.
enum Expect {
    Nothing,
    One,
    Pipeline(Box<Gathering>),
}

/// A request's reply on its way. Part of every call's future, so the rare answer known at once
/// (an error, a no-response command's `Nil`) is boxed.
pub(crate) enum Receiving {
    Waiting(oneshot::Receiver<Result<Value, RedisError>>),
    Ready(Option<Box<Result<Value, RedisError>>>),
}

impl Receiving {
    fn ready(result: Result<Value, RedisError>) -> Self {
        Receiving::Ready(Some(Box::new(result)))
    }
}

impl Future for Receiving {
    type Output = Result<Value, RedisError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Receiving::Waiting(receiver) => Pin::new(receiver)
                .poll(cx)
                // The slot dropped without a reply: the connection's tasks ended.
                .map(|reply| reply.unwrap_or_else(|_| Err(closed()))),
            Receiving::Ready(reply) => {
                Poll::Ready(reply.take().map_or_else(|| Err(closed()), |reply| *reply))
            }
        }
    }
}

impl Shared {
    /// Hands each reply to its request; replies to nobody (pushes) are dropped. `done` is
    /// the reader's scratch list, filled under the lock and answered after it. A reply that no
    /// request waits for is an error: the stream is out of step, and every later reply would
    /// go to the wrong caller.
    fn deliver(
        &self,
        replies: &mut Vec<Value>,
        done: &mut Vec<(ReplySender, Result<Value, RedisError>)>,
    ) -> Result<(), RedisError> {
        let mut outcome = Ok(());
        {
            let mut state = lock(&self.state);
            for value in replies.drain(..) {
                if matches!(value, Value::Push { .. }) {
                    continue;
                }
                let Some(front) = state.in_flight.front_mut() else {
                    outcome = Err(protocol_error(
                        "a reply arrived that no request was waiting for",
                    ));
                    break;
                };
                let result = match &mut front.pipeline {
                    None => Some(Ok(value)),
                    Some(gathering) => gathering.take(value),
                };
                if let Some(result) = result {
                    // No reply slot: its deadline passed, and the caller has its error.
                    if let Some(reply) = state.in_flight.pop_front().and_then(|entry| entry.reply) {
                        done.push((reply, result));
                    }
                }
            }
        }
        for (reply, result) in done.drain(..) {
            // A caller that gave up (its deadline passed) dropped its end: nothing to do.
            let _ = reply.send(result);
        }
        outcome
    }

    /// The connection broke: every request waiting or queued fails with `error`, and so does
    /// every later one.
    fn fail(&self, error: RedisError) {
        self.alive.store(false, Ordering::Release);
        let (waiting, writer, watchdog) = {
            let mut state = lock(&self.state);
            if state.broken.is_some() {
                return;
            }
            state.broken = Some(error.clone());
            state.out.clear();
            (
                std::mem::take(&mut state.in_flight),
                state.writer.take(),
                state.watchdog.take(),
            )
        };
        for reply in waiting.into_iter().filter_map(|entry| entry.reply) {
            let _ = reply.send(Err(error.clone()));
        }
        for task in [writer, watchdog].into_iter().flatten() {
            task.wake();
        }
    }

    /// Ready with the bytes waiting once there are some; `None` once the connection broke.
    fn poll_waiting(&self, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        let mut state = lock(&self.state);
        if state.broken.is_some() {
            return Poll::Ready(None);
        }
        if state.out.is_empty() {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Some(state.out.len()))
    }

    /// Ready once the earliest deadline passed (`true`), or the connection broke (`false`).
    /// The sleep is re-armed here, outside the lock, to the earliest deadline read under it.
    fn poll_deadline(&self, cx: &mut Context<'_>, mut sleep: Pin<&mut Sleep>) -> Poll<bool> {
        let earliest = {
            let mut state = lock(&self.state);
            if state.broken.is_some() {
                return Poll::Ready(false);
            }
            state.watchdog = Some(cx.waker().clone());
            state.earliest
        };
        let Some(earliest) = earliest else {
            return Poll::Pending;
        };
        if sleep.deadline() != earliest {
            sleep.as_mut().reset(earliest);
        }
        sleep.poll(cx).map(|()| true)
    }

    /// Fails every request whose deadline is past `now` (its entry stays, without its slot)
    /// and finds the next deadline.
    fn expire(&self, now: tokio::time::Instant) {
        let mut late = Vec::new();
        {
            let mut state = lock(&self.state);
            let mut earliest: Option<tokio::time::Instant> = None;
            for entry in state.in_flight.iter_mut() {
                let (Some(_), Some(deadline)) = (&entry.reply, entry.deadline) else {
                    continue;
                };
                if deadline.at <= now {
                    late.extend(entry.reply.take().map(|reply| (reply, deadline)));
                } else if earliest.is_none_or(|at| deadline.at < at) {
                    earliest = Some(deadline.at);
                }
            }
            state.earliest = earliest;
        }
        for (reply, deadline) in late {
            let _ = reply.send(Err(deadline.passed()));
        }
    }

    fn waiting(&self) -> usize {
        lock(&self.state).out.len()
    }

    /// Swaps the queued bytes into `batch` (empty), leaving its buffer for the next ones.
    fn take_batch(&self, batch: &mut Vec<u8>) {
        std::mem::swap(&mut lock(&self.state).out, batch);
    }
}

async fn write_requests(shared: Arc<Shared>, mut socket: OwnedWriteHalf) {
    let mut batching = Batching::default();
    let mut batch = Vec::with_capacity(4096);
    loop {
        let Some(waiting) = poll_fn(|cx| shared.poll_waiting(cx)).await else {
            return;
        };
        if batching.yields_first() {
            // Callers already runnable queue their commands meanwhile (`coalesce.rs`).
            tokio::task::yield_now().await;
            batching.gathered(shared.waiting() > waiting);
        }
        shared.take_batch(&mut batch);
        if let Err(error) = socket.write_all(&batch).await {
            shared.fail(error.into());
            return;
        }
        batch.clear();
        if batch.capacity() > MAX_IDLE_BUFFER {
            // A huge pipeline passed: give its memory back.
            batch = Vec::with_capacity(4096);
        }
    }
}

/// Fails the requests whose deadline passed: one timer per connection, re-armed about once per
/// deadline period, instead of one timer entry per call.
async fn expire_late_requests(shared: Arc<Shared>) {
    let sleep = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(sleep);
    while poll_fn(|cx| shared.poll_deadline(cx, sleep.as_mut())).await {
        // The sleep fired, so its deadline passed whatever a clock read says: expiring at
        // least that one keeps the loop from spinning on a reading a hair early.
        shared.expire(tokio::time::Instant::now().max(sleep.deadline()));
    }
}

async fn read_replies(shared: Arc<Shared>, mut socket: OwnedReadHalf) {
    let mut buffer: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut scan = FrameScan::default();
    let mut replies = Vec::new();
    let mut done = Vec::new();
    let error = loop {
        if buffer.capacity() - buffer.len() < 4096 {
            buffer.reserve(buffer.len().max(16 * 1024));
        }
        match socket.read_buf(&mut buffer).await {
            Ok(0) => break closed(),
            Ok(_) => {}
            Err(error) => break error.into(),
        }
        let mut start = 0;
        let framing = loop {
            match scan.complete_frame(&buffer[start..]) {
                Ok(Some(len)) => match resp::decode(&buffer[start..start + len]) {
                    Ok(value) => {
                        replies.push(value);
                        start += len;
                    }
                    Err(error) => break Err(error),
                },
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        buffer.drain(..start);
        if buffer.is_empty() && buffer.capacity() > MAX_IDLE_BUFFER {
            // A huge reply passed: give its memory back.
            buffer = Vec::with_capacity(16 * 1024);
        }
        if !replies.is_empty() {
            if let Err(error) = shared.deliver(&mut replies, &mut done) {
                break error;
            }
        }
        if let Err(error) = framing {
            break error;
        }
    };
    shared.fail(error);
}

/// redis-rs's error for a transaction whose commands the server refused to queue. Its own
/// constructor is private, so the queued errors travel in the detail; when every one of them
/// says the server ran nothing (`LOADING`...), that error is returned instead, as the policy
/// loop needs it to wait or retry (`retry::refused_without_running`).
fn aborted_transaction(queued: &[(usize, ServerError)]) -> RedisError {
    if let Some(not_run) = retry::refused_without_running(
        queued
            .iter()
            .map(|(_, e)| Some(RedisError::from(e.clone()))),
    ) {
        return not_run;
    }
    let detail = queued
        .iter()
        .map(|(index, error)| format!("(Index {index}, error: {error})"))
        .collect::<Vec<_>>()
        .join(", ")
        .replace(['\r', '\n'], " ");
    // As a server error, so that it reads like the `EXECABORT` of every other connection.
    match redis::parse_redis_value(
        format!("-EXECABORT Transaction aborted: [{detail}]\r\n").as_bytes(),
    ) {
        Ok(Value::ServerError(error)) => RedisError::from(error),
        _ => RedisError::from((
            ErrorKind::Server(ServerErrorKind::ExecAbort),
            "Transaction aborted",
            format!("[{detail}]"),
        )),
    }
}

/// The error of a request on a connection that closed (redis-rs's too).
fn closed() -> RedisError {
    RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
}

/// A pipeline's replies as a list: redis-rs's shape (a lone reply is a list of one).
pub(crate) fn into_values(value: Value) -> Vec<Value> {
    match value {
        Value::Array(values) => values,
        value => vec![value],
    }
}

#[cfg(test)]
mod tests {
    //! The driver's own rules against a scripted peer on a real socket: reply order, framing,
    //! pushes, breakage. What a real server does with it is in `tests/shared_connection.rs`.

    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    struct Peer {
        connection: Multiplexed,
        server: TcpStream,
        alive: Arc<AtomicBool>,
    }

    /// A connection to a scripted peer, past its handshake (database 0: `HELLO` and two
    /// `CLIENT SETINFO`).
    async fn peer() -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let alive = Arc::new(AtomicBool::new(true));
        let flag = alive.clone();
        let connecting = tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            Multiplexed::connect(stream, &RedisConnectionInfo::default(), flag).await
        });
        let (mut server, _) = listener.accept().await.unwrap();
        read_requests(&mut server, 3).await;
        server.write_all(b"%0\r\n+OK\r\n+OK\r\n").await.unwrap();
        let connection = connecting.await.unwrap().unwrap();
        Peer {
            connection,
            server,
            alive,
        }
    }

    /// Reads `count` whole requests off the peer's socket, returning their bytes.
    async fn read_requests(server: &mut TcpStream, count: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut scan = FrameScan::default();
        let (mut start, mut seen) = (0, 0);
        while seen < count {
            let mut chunk = [0u8; 4096];
            let n = server.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the client closed after {seen} of {count} requests");
            bytes.extend_from_slice(&chunk[..n]);
            while let Some(len) = scan.complete_frame(&bytes[start..]).unwrap() {
                start += len;
                seen += 1;
            }
        }
        bytes
    }

    fn get(key: &str) -> Cmd {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        cmd
    }

    async fn within<T>(future: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), future)
            .await
            .expect("within 10 s")
    }

    #[tokio::test]
    async fn replies_split_into_single_bytes_with_pushes_between_reach_their_callers() {
        let mut peer = peer().await;
        let first = peer.connection.send_command(&get("a"), None);
        let mut pipeline = redis::pipe();
        pipeline.cmd("GET").arg("b").cmd("GET").arg("c");
        let second = peer.connection.send_pipeline(&pipeline, 0, 2, None);
        let third = peer.connection.send_command(&get("d"), None);
        read_requests(&mut peer.server, 4).await;
        let script: &[u8] = b"$1\r\nA\r\n>2\r\n+invalidate\r\n*1\r\n$1\r\na\r\n$1\r\nB\r\n_\r\n\
            >2\r\n+invalidate\r\n_\r\n%1\r\n+k\r\n:4\r\n";
        for byte in script {
            peer.server.write_all(&[*byte]).await.unwrap();
        }
        assert_eq!(
            within(first).await.unwrap(),
            Value::BulkString(b"A".to_vec())
        );
        assert_eq!(
            within(second).await.unwrap(),
            Value::Array(vec![Value::BulkString(b"B".to_vec()), Value::Nil])
        );
        assert_eq!(
            within(third).await.unwrap(),
            Value::Map(vec![(Value::SimpleString("k".into()), Value::Int(4))])
        );
        assert!(peer.alive.load(Ordering::Acquire));
    }

    fn deadline_in(limit: Duration) -> Option<Deadline> {
        Deadline::after(std::time::Instant::now(), Some(limit))
    }

    /// A request with no reply fails at its deadline; its reply, when it comes, is dropped,
    /// and the next request gets its own.
    #[tokio::test]
    async fn a_late_reply_fails_at_the_deadline_and_does_not_reach_the_next_caller() {
        let mut peer = peer().await;
        let started = std::time::Instant::now();
        let late = peer
            .connection
            .send_command(&get("a"), deadline_in(Duration::from_millis(200)));
        read_requests(&mut peer.server, 1).await;
        let error = within(late).await.unwrap_err();
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "not before it"
        );
        assert!(error.is_timeout(), "{error}");
        assert_eq!(
            error.to_string(),
            deadline_in(Duration::from_millis(200))
                .unwrap()
                .passed()
                .to_string()
        );
        let next = peer
            .connection
            .send_command(&get("b"), deadline_in(Duration::from_secs(30)));
        read_requests(&mut peer.server, 1).await;
        peer.server
            .write_all(b"$4\r\nlate\r\n$4\r\nmine\r\n")
            .await
            .unwrap();
        assert_eq!(
            within(next).await.unwrap(),
            Value::BulkString(b"mine".to_vec())
        );
        assert!(
            peer.alive.load(Ordering::Acquire),
            "a deadline does not break the connection"
        );
    }

    /// Deadlines are per request: one behind a request with a long deadline still fails at
    /// its own, and a request with none waits.
    #[tokio::test]
    async fn a_short_deadline_behind_a_long_one_fails_at_its_own() {
        let mut peer = peer().await;
        let patient = peer.connection.send_command(&get("a"), None);
        let long = peer
            .connection
            .send_command(&get("b"), deadline_in(Duration::from_secs(60)));
        let short = peer
            .connection
            .send_command(&get("c"), deadline_in(Duration::from_millis(100)));
        read_requests(&mut peer.server, 3).await;
        let error = within(short).await.unwrap_err();
        assert!(error.is_timeout(), "{error}");
        peer.server.write_all(b":1\r\n:2\r\n:3\r\n").await.unwrap();
        assert_eq!(within(patient).await.unwrap(), Value::Int(1));
        assert_eq!(within(long).await.unwrap(), Value::Int(2));
    }

    #[tokio::test]
    async fn a_transaction_with_a_refused_command_is_aborted_naming_it() {
        let mut peer = peer().await;
        let mut transaction = redis::pipe();
        transaction
            .atomic()
            .cmd("SET")
            .arg("k")
            .arg(1)
            .cmd("INCRBY")
            .arg("k");
        let reply = peer.connection.send_pipeline(&transaction, 3, 1, None);
        read_requests(&mut peer.server, 4).await;
        peer.server
            .write_all(b"+OK\r\n+QUEUED\r\n-ERR wrong number of arguments for 'incrby' command\r\n-EXECABORT Transaction discarded because of previous errors.\r\n")
            .await
            .unwrap();
        let error = within(reply).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Server(ServerErrorKind::ExecAbort));
        assert!(
            error.to_string().contains("(Index 1, error: ")
                && error.to_string().contains("wrong number of arguments"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_transaction_refused_while_loading_fails_with_loading() {
        let mut peer = peer().await;
        let mut transaction = redis::pipe();
        transaction.atomic().cmd("SET").arg("k").arg(1);
        let reply = peer.connection.send_pipeline(&transaction, 2, 1, None);
        read_requests(&mut peer.server, 3).await;
        peer.server
            .write_all(b"+OK\r\n-LOADING Redis is loading the dataset in memory\r\n-EXECABORT Transaction discarded because of previous errors.\r\n")
            .await
            .unwrap();
        let error = within(reply).await.unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::Server(ServerErrorKind::BusyLoading),
            "the policy loop waits for readiness on this: {error}"
        );
    }

    #[tokio::test]
    async fn a_peer_that_closes_fails_the_waiting_call_and_every_later_one() {
        let mut peer = peer().await;
        let waiting = peer.connection.send_command(&get("a"), None);
        read_requests(&mut peer.server, 1).await;
        drop(peer.server);
        let error = within(waiting).await.unwrap_err();
        assert!(error.is_io_error(), "{error}");
        assert!(!peer.alive.load(Ordering::Acquire), "alive is cleared");
        let later = within(peer.connection.send_command(&get("b"), None))
            .await
            .unwrap_err();
        assert!(later.is_io_error(), "{later}");
    }

    #[tokio::test]
    async fn a_reply_nobody_asked_for_breaks_the_connection() {
        let mut peer = peer().await;
        peer.server.write_all(b"+OK\r\n").await.unwrap();
        within(async {
            while peer.alive.load(Ordering::Acquire) {
                tokio::task::yield_now().await;
            }
        })
        .await;
        let error = within(peer.connection.send_command(&get("a"), None))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Parse, "{error}");
    }

    #[tokio::test]
    async fn dropping_the_last_clone_closes_the_socket() {
        let mut peer = peer().await;
        let clone = peer.connection.clone();
        drop(peer.connection);
        // One clone left: the connection still serves it.
        let reply = clone.send_command(&get("a"), None);
        read_requests(&mut peer.server, 1).await;
        peer.server.write_all(b"$-1\r\n").await.unwrap();
        assert_eq!(within(reply).await.unwrap(), Value::Nil);
        drop(clone);
        let mut rest = [0u8; 16];
        let read = within(peer.server.read(&mut rest)).await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the socket closed: {read:?}"
        );
        assert!(!peer.alive.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn handshake_refusals_keep_redis_rs_errors() {
        for (db, replies, expect) in [
            (
                0,
                &b"-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+OK\r\n"[..],
                "WRONGPASS",
            ),
            (
                7,
                b"%0\r\n-ERR DB index is out of range\r\n+OK\r\n+OK\r\n",
                "DB index is out of range",
            ),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let connecting = tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                let settings = RedisConnectionInfo::default()
                    .set_db(db)
                    .set_password("secret");
                Multiplexed::connect(stream, &settings, Arc::new(AtomicBool::new(true))).await
            });
            let (mut server, _) = listener.accept().await.unwrap();
            let requests = read_requests(&mut server, if db == 0 { 3 } else { 4 }).await;
            assert!(
                String::from_utf8_lossy(&requests).contains("AUTH\r\n$7\r\ndefault\r\n$6\r\nsecret"),
                "HELLO carries the credentials"
            );
            server.write_all(replies).await.unwrap();
            let Err(error) = within(connecting).await.unwrap() else {
                panic!("the handshake must fail")
            };
            assert!(error.to_string().contains(expect), "{error}");
        }
    }
}
