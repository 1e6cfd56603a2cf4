// The client has the enum's visibility: private here, so not usable outside its module.
mod inner {
    #[redis_db::databases(config = "../fixtures/shop.yaml", client = ShopDb)]
    enum Shop {}
}

fn main() {
    let _: Option<inner::ShopDb> = None;
}
