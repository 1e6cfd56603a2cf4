#[redis_db::databases(config = "alias_to_unknown.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
