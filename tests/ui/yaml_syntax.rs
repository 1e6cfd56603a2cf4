#[redis_db::databases(config = "yaml_syntax.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
