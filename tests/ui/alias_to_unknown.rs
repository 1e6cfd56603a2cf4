#[redis_db::databases(config = "../../../../tests/ui/alias_to_unknown.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
