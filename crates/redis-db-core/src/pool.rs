//! Connection set-up shared by the lane and the exclusive pool: address, credentials, database
//! number, timeouts and TCP settings (TCP_NODELAY and keepalive) on every socket.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Hook, Manager, Pool, Runtime, Timeouts};
use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    ProtocolVersion, RedisConnectionInfo, RedisError,
};
use redis_db_config::{Config, Connection};

use crate::stats::Counters;

/// What a target needs to open connections.
pub(crate) struct Endpoint {
    pub client: Client,
    pub connection_config: AsyncConnectionConfig,
    pub info: ConnectionInfo,
}

pub(crate) fn endpoint(config: &Config, db: u32) -> Result<Endpoint, RedisError> {
    let info = connection_info(&config.connection, config, db)?;
    let client = Client::open(info.clone())?;
    // No response timeout here: every call gets its own deadline (its database's timeout plus
    // the block time of blocking commands), which a per-connection setting cannot express.
    let connection_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(None);
    Ok(Endpoint {
        client,
        connection_config,
        info,
    })
}

fn connection_info(
    connection: &Connection,
    config: &Config,
    db: u32,
) -> Result<ConnectionInfo, RedisError> {
    let addr = if connection.tls {
        ConnectionAddr::TcpTls {
            host: connection.host.clone(),
            port: connection.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(connection.host.clone(), connection.port)
    };
    // RESP3, so that the shared lane learns of a closed socket from the driver before it sends
    // (see `lane::LaneConnection::alive`). Every connection speaks it, so replies have one shape
    // whichever road a call takes.
    let mut redis = RedisConnectionInfo::default()
        .set_db(i64::from(db))
        .set_protocol(ProtocolVersion::RESP3);
    if let Some(username) = &connection.username {
        redis = redis.set_username(username);
    }
    if let Some(password) = &connection.password {
        redis = redis.set_password(password.expose());
    }
    Ok(addr
        .into_connection_info()?
        .set_redis_settings(redis)
        .set_tcp_settings(tcp_settings(config)))
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

/// The pool of exclusive connections for `connection()` and blocking commands.
pub(crate) fn exclusive_pool(
    endpoint: &Endpoint,
    max_size: usize,
    config: &Config,
    counters: Arc<Counters>,
) -> Result<Pool, RedisError> {
    let manager =
        Manager::new_with_config(endpoint.info.clone(), endpoint.connection_config.clone())?;
    let created = Hook::sync_fn(move |_, _| {
        counters.pool_connection_created();
        Ok(())
    });
    Pool::builder(manager)
        .max_size(max_size.max(1))
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(config.timeout),
            create: Some(config.connect_timeout + Duration::from_millis(100)),
            recycle: Some(config.timeout),
        })
        .post_create(created)
        .build()
        .map_err(|e| {
            RedisError::from((redis::ErrorKind::InvalidClientConfig, "pool", e.to_string()))
        })
}
