#[redis_db::databases(path = "config/redis-databases.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
