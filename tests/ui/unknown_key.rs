#[redis_db::databases(config = "../../../../tests/ui/unknown_key.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
