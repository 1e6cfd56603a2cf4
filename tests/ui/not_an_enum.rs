#[redis_db::databases(config = "../../../../tests/fixtures/shop.yaml")]
pub struct Shop;

fn main() {}
