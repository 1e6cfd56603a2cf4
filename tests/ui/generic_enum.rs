#[redis_db::databases(config = "../../../../tests/fixtures/shop.yaml")]
pub enum Shop<T> {}

fn main() {}
