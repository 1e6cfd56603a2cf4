#[redis_db::databases(config = "../../../../tests/fixtures/shop.yaml", client = "ShopDb")]
pub enum Shop {}

fn main() {}
