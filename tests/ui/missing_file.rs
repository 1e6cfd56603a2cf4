#[redis_db::databases(config = "/nonexistent-redis-db-ui/no-such-file.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
