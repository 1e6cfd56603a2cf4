#[redis_db::databases(config = "tls_missing_file.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
