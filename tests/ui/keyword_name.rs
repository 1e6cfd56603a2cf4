#[redis_db::databases(config = "../../../../tests/ui/keyword_name.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
