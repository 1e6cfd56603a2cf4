#[redis_db::databases(config = "tls_cert_without_key.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
