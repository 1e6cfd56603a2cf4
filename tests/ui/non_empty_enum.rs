#[redis_db::databases(config = "../fixtures/shop.yaml")]
pub enum Shop {
    Orders,
    Carts,
}

fn main() {}
