//! How a target opens connections, per topology: a standalone server, the master (or a
//! replica) that sentinels name, or a Redis Cluster. Every road applies the same timeouts and
//! TCP settings (TCP_NODELAY, keepalive) and speaks RESP3.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    Pipeline, ProtocolVersion, PushKind, RedisConnectionInfo, RedisError, RedisFuture, TlsMode,
    Value,
};
use redis_db_config::{Config, ConnectionSettings, NodeAddress, ReadFrom, Sentinel, Topology};

use crate::multiplex::Multiplexed;
use crate::slot_map::{ReplicaReads, SeenTopology};
use crate::tls;

/// Which node of an endpoint a connection goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The master (or the standalone server, or the cluster's masters).
    Primary,
    /// A replica, for read-only commands when `read_from: replica`.
    Replica,
}

// One per target, built once at connect: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Connector {
    Standalone(Client),
    Sentinel(SentinelConnector),
    Cluster(ClusterConnector),
}

/// A Redis Cluster's client. Derefs to redis-rs's `ClusterClient`, which it wraps with what the
/// SDK keeps beside it.
pub(crate) struct ClusterConnector {
    client: ClusterClient,
    /// The slot map its replica-read connections hold (`read_from: replica` only).
    seen: Option<Arc<SeenTopology>>,
}

impl std::ops::Deref for ClusterConnector {
    type Target = ClusterClient;

    fn deref(&self) -> &ClusterClient {
        &self.client
    }
}

/// The master (or a replica) that sentinels name.
pub(crate) struct SentinelConnector {
    /// Asks the sentinels on every connect, so a reconnect after a failover finds the new
    /// master. It needs `&mut`, hence the lock (held only while connecting).
    sentinels: tokio::sync::Mutex<SentinelClient>,
    /// The master announced on `+switch-master` (see `failover.rs`). Right after a failover
    /// some sentinels may still name the old master, which keeps answering ROLE `master` until
    /// it is demoted; the announced address is what a reconnect must use.
    announced: std::sync::Mutex<Option<Client>>,
    /// Address-less template of a data-node connection: database, credentials, RESP3, TCP.
    node: ConnectionInfo,
}

/// An open connection of any topology. Every kind multiplexes: clones share one socket (per
/// node).
#[derive(Clone)]
pub(crate) enum Link {
    /// The shared lane's plain-TCP connection to one node (`multiplex.rs`).
    Shared(Multiplexed),
    /// redis-rs's connection to one node: exclusive ones, subscriptions, TLS.
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Connector {
    pub fn new(
        config: &Config,
        connection: &ConnectionSettings,
        topology: &Topology,
        db: u32,
        role: Role,
    ) -> Result<Self, RedisError> {
        let tcp = tcp_settings(config);
        match topology {
            Topology::Standalone => {
                let info = address(&connection.host, connection.port, tls_mode(connection))
                    .into_connection_info()?
                    .set_redis_settings(node_settings(connection, db))
                    .set_tcp_settings(tcp);
                Ok(Connector::Standalone(node_client(info, connection)?))
            }
            Topology::Sentinel(sentinel) => {
                let server_type = match role {
                    Role::Primary => SentinelServerType::Master,
                    Role::Replica => SentinelServerType::Replica,
                };
                // The endpoint's `tls:` is the sentinels' too: a deployment that encrypts its
                // data nodes runs its sentinels on `tls-port` as well (and they reach the
                // nodes with `tls-replication yes`).
                let nodes = sentinel
                    .nodes
                    .iter()
                    .map(|n| address(&n.host, n.port, tls_mode(connection)));
                let mut builder =
                    SentinelClientBuilder::new(nodes, &sentinel.master_name, server_type)?
                        .set_client_to_redis_db(i64::from(db))
                        .set_client_to_redis_protocol(ProtocolVersion::RESP3)
                        .set_client_to_redis_tcp_settings(tcp.clone())
                        .set_client_to_sentinel_tcp_settings(tcp);
                if let Some(mode) = tls_mode(connection) {
                    builder = builder
                        .set_client_to_redis_tls_mode(mode)
                        .set_client_to_sentinel_tls_mode(mode);
                    if let Some(certificates) = tls::certificates(&connection.tls_options)? {
                        builder = builder
                            .set_client_to_redis_certificates(certificates.clone())
                            .set_client_to_sentinel_certificates(certificates);
                    }
                }
                if let Some(username) = &connection.username {
                    builder = builder.set_client_to_redis_username(username);
                }
                if let Some(password) = &connection.password {
                    builder = builder.set_client_to_redis_password(password.expose());
                }
                if let Some(username) = &sentinel.username {
                    builder = builder.set_client_to_sentinel_username(username);
                }
                if let Some(password) = &sentinel.password {
                    builder = builder.set_client_to_sentinel_password(password.expose());
                }
                let node = address(&connection.host, connection.port, tls_mode(connection))
                    .into_connection_info()?
                    .set_redis_settings(node_settings(connection, db))
                    .set_tcp_settings(tcp_settings(config));
                // The template keeps the certificates, so the announced master speaks TLS too.
                let node = node_client(node, connection)?.get_connection_info().clone();
                Ok(Connector::Sentinel(SentinelConnector {
                    sentinels: tokio::sync::Mutex::new(builder.build()?),
                    announced: std::sync::Mutex::new(None),
                    node,
                }))
            }
            Topology::Cluster(cluster) => {
                let nodes: Vec<_> = cluster
                    .nodes
                    .iter()
                    .map(|n| address(&n.host, n.port, tls_mode(connection)))
                    .collect();
                let mut builder = ClusterClientBuilder::new(nodes)
                    .use_protocol(ProtocolVersion::RESP3)
                    .tcp_settings(tcp)
                    .connection_timeout(config.connect_timeout)
                    // Our own attempt loop times every call out (with blocking commands' block
                    // time added) and decides what may be re-sent; the cluster driver keeps
                    // only redirects (see `retry::classify`), so it must not retry on its own.
                    .response_timeout(Duration::from_secs(24 * 3600))
                    .overall_response_timeout(None)
                    .retries(0);
                if cluster.numbered_databases {
                    builder = builder.database_id(i64::from(db));
                }
                let seen = (cluster.read_from == ReadFrom::Replica && role == Role::Replica)
                    .then(Arc::<SeenTopology>::default);
                if let Some(seen) = &seen {
                    builder = builder.read_routing_strategy(ReplicaReads(seen.clone()));
                }
                if let Some(username) = &connection.username {
                    builder = builder.username(username);
                }
                if let Some(password) = &connection.password {
                    builder = builder.password(password.expose());
                }
                if let Some(mode) = tls_mode(connection) {
                    builder = builder.tls(mode);
                    if let Some(certificates) = tls::certificates(&connection.tls_options)? {
                        builder = builder.certs(certificates);
                    }
                }
                Ok(Connector::Cluster(ClusterConnector {
                    client: builder.build()?,
                    seen,
                }))
            }
        }
    }

    /// Opens a connection. `shared`: for the shared lane, whose connection batches the
    /// writes of all callers (`coalesce.rs`) and clears `alive` the moment its driver stops
    /// (the socket closed); exclusive connections pass `None`.
    pub async fn connect(
        &self,
        config: &AsyncConnectionConfig,
        shared: Option<Arc<AtomicBool>>,
    ) -> Result<Link, RedisError> {
        let opened = match self {
            Connector::Standalone(client) => open_node(client, config, shared).await,
            Connector::Sentinel(sentinel) => sentinel.connect(config, shared).await,
            Connector::Cluster(cluster) => cluster.get_async_connection().await.map(Link::Cluster),
        };
        opened.map_err(tls::refusal)
    }

    /// The slot map the newest replica-read cluster connection holds (`topology_refresh.rs`).
    pub fn seen_topology(&self) -> Option<Arc<SeenTopology>> {
        match self {
            Connector::Cluster(cluster) => cluster.seen.clone(),
            _ => None,
        }
    }

    /// A failover announced this master: the next connect goes there.
    pub fn announce_master(&self, host: &str, port: u16) {
        if let Connector::Sentinel(sentinel) = self {
            let addr = match sentinel.node.addr() {
                ConnectionAddr::TcpTls {
                    insecure,
                    tls_params,
                    ..
                } => ConnectionAddr::TcpTls {
                    host: host.to_owned(),
                    port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                },
                _ => ConnectionAddr::Tcp(host.to_owned(), port),
            };
            let info = sentinel.node.clone().set_addr(addr);
            *sentinel.lock_announced() = Client::open(info).ok();
        }
    }
}

impl SentinelConnector {
    async fn connect(
        &self,
        config: &AsyncConnectionConfig,
        shared: Option<Arc<AtomicBool>>,
    ) -> Result<Link, RedisError> {
        let announced = self.lock_announced().clone();
        if let Some(client) = announced {
            if let Ok(mut connection) = open_node(&client, config, shared.clone()).await {
                if is_master(&mut connection).await {
                    return Ok(connection);
                }
            }
            // Not (or no longer) the master: the sentinels know better by now.
            *self.lock_announced() = None;
        }
        let client = self.sentinels.lock().await.async_get_client().await?;
        open_node(&client, config, shared).await
    }

    fn lock_announced(&self) -> std::sync::MutexGuard<'_, Option<Client>> {
        self.announced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One connection to one node. The shared lane's plain-TCP connection is the SDK's own
/// (`multiplex.rs`: its writes batch, and it clears `alive` the moment it breaks); every other
/// connection (exclusive ones, TLS, Unix sockets) is redis-rs's own, and a shared one of those
/// learns of a closed socket from the RESP3 disconnection notice instead.
async fn open_node(
    client: &Client,
    config: &AsyncConnectionConfig,
    shared: Option<Arc<AtomicBool>>,
) -> Result<Link, RedisError> {
    let info = client.get_connection_info();
    let Some(alive) = shared else {
        return client
            .get_multiplexed_async_connection_with_config(config)
            .await
            .map(Link::Node);
    };
    let ConnectionAddr::Tcp(host, port) = info.addr() else {
        let config = config
            .clone()
            .set_push_sender(move |push: redis::PushInfo| {
                if push.kind == PushKind::Disconnection {
                    alive.store(false, Ordering::Release);
                }
                Ok::<(), std::convert::Infallible>(())
            });
        return client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map(Link::Node);
    };
    let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
    stream.set_nodelay(info.tcp_settings().nodelay())?;
    if let Some(keepalive) = info.tcp_settings().keepalive() {
        redis::io::tcp::socket2::SockRef::from(&stream).set_tcp_keepalive(keepalive)?;
    }
    Multiplexed::connect(stream, info.redis_settings(), alive)
        .await
        .map(Link::Shared)
}

async fn is_master(connection: &mut Link) -> bool {
    redis::cmd("ROLE")
        .query_async::<Value>(connection)
        .await
        .is_ok_and(|role| crate::role::is_master(&role))
}

/// `Some` when the endpoint speaks TLS (`rediss://` or any `tls:` key); installs the rustls
/// crypto provider first, so that no TLS handshake can panic for want of one.
fn tls_mode(connection: &ConnectionSettings) -> Option<TlsMode> {
    connection.tls.then(|| {
        tls::ensure_crypto_provider();
        tls::mode(connection)
    })
}

fn address(host: &str, port: u16, tls: Option<TlsMode>) -> ConnectionAddr {
    match tls {
        Some(mode) => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: mode == TlsMode::Insecure,
            tls_params: None,
        },
        None => ConnectionAddr::Tcp(host.to_owned(), port),
    }
}

/// A client for one sentinel itself (the failover follower subscribes through it): the
/// sentinels' credentials, the endpoint's TLS and the TCP settings of every other socket
/// (keepalive included).
pub(crate) fn sentinel_client(
    config: &Config,
    connection: &ConnectionSettings,
    sentinel: &Sentinel,
    node: &NodeAddress,
) -> Result<Client, RedisError> {
    let mut settings = RedisConnectionInfo::default();
    if let Some(username) = &sentinel.username {
        settings = settings.set_username(username);
    }
    if let Some(password) = &sentinel.password {
        settings = settings.set_password(password.expose());
    }
    let info = address(&node.host, node.port, tls_mode(connection))
        .into_connection_info()?
        .set_redis_settings(settings)
        .set_tcp_settings(tcp_settings(config));
    node_client(info, connection)
}

/// A client for one node; on a TLS endpoint with a CA or client certificate, built with them
/// (redis-rs's own TLS road: the plain-TCP shared connection of `open_node` is for `Tcp` only).
fn node_client(
    info: ConnectionInfo,
    connection: &ConnectionSettings,
) -> Result<Client, RedisError> {
    if !connection.tls {
        return Client::open(info);
    }
    match tls::certificates(&connection.tls_options)? {
        Some(certificates) => Client::build_with_tls(info, certificates),
        None => Client::open(info),
    }
}

fn node_settings(connection: &ConnectionSettings, db: u32) -> RedisConnectionInfo {
    // RESP3, so that the shared lane learns of a closed socket from the driver before it sends
    // (see `lane::LaneConnection::alive`). Every connection speaks it, so replies have one shape
    // whichever road a call takes.
    let mut settings = RedisConnectionInfo::default()
        .set_db(i64::from(db))
        .set_protocol(ProtocolVersion::RESP3);
    if let Some(username) = &connection.username {
        settings = settings.set_username(username);
    }
    if let Some(password) = &connection.password {
        settings = settings.set_password(password.expose());
    }
    settings
}

fn tcp_settings(config: &Config) -> TcpSettings {
    let keepalive = TcpKeepalive::new()
        .with_time(config.keepalive.idle)
        .with_interval(config.keepalive.interval)
        .with_retries(config.keepalive.count);
    TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive)
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Shared(connection) => Box::pin(connection.send_command(cmd, None)),
            Link::Node(connection) => connection.req_packed_command(cmd),
            Link::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Shared(connection) => {
                let reply = connection.send_pipeline(pipeline, offset, count, None);
                Box::pin(async move { reply.await.map(crate::multiplex::into_values) })
            }
            Link::Node(connection) => connection.req_packed_commands(pipeline, offset, count),
            Link::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Shared(connection) => connection.db(),
            Link::Node(connection) => connection.get_db(),
            Link::Cluster(connection) => connection.get_db(),
        }
    }
}
