#[redis_db::databases(config = "db_out_of_range.yaml")]
pub enum RedisDatabase {}

fn main() {
    let _ = RedisDatabase::connect();
}
