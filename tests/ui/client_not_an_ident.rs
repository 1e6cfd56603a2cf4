#[redis_db::databases(config = "../fixtures/shop.yaml", client = "ShopDb")]
pub enum Shop {}

fn main() {}
