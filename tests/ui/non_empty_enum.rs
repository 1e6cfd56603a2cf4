#[redis_db::databases(config = "../../../../tests/fixtures/shop.yaml")]
pub enum Shop {
    Orders,
    Carts,
}

fn main() {}
