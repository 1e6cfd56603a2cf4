#[redis_db::databases(config = "../fixtures/shop.yaml")]
pub struct Shop;

fn main() {}
