#[redis_db::databases(config = "../../../../tests/ui/yaml_syntax.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
