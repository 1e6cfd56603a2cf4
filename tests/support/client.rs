//! How a test aims the SDK at its own server: `Db::builder().on(&server)` is that server's URL
//! with the environment ignored, so a developer's `REDIS_*` variables never reach a test.

use redis_db::__private::DatabaseEnum;
use redis_db::Builder;

use super::RedisServer;

pub trait OnTestServer {
    /// `.url(server.url()).ignore_environment()`.
    fn on(self, server: &RedisServer) -> Self;
}

impl<E: DatabaseEnum> OnTestServer for Builder<E> {
    fn on(self, server: &RedisServer) -> Self {
        self.url(server.url()).ignore_environment()
    }
}
