#[redis_db::databases(config = "../../../../tests/ui/no-such-file.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
