// A wrong argument is one error: the other arguments still count, so code naming the client
// `ShopDb` or calling the accessors adds no errors of its own.

mod misspelt {
    // The default client name is taken, which is why `client = ShopDb` is given: falling back
    // to the default would be a second error, `ShopClient` defined twice.
    pub struct ShopClient;

    #[redis_db::databases(config = "../fixtures/shop.yaml", client = ShopDb, colour = "blue")]
    pub enum Shop {}

    pub fn use_it(db: &ShopDb, blocking: &ShopDbBlocking) {
        let _ = (db.orders(), blocking.carts_mirror(), Shop::Carts.index());
    }
}

mod malformed_client {
    // The client's name cannot be read: the default one is used, the config is read all the same.
    #[redis_db::databases(config = "../fixtures/shop.yaml", client = "ShopDb")]
    pub enum Shop {}

    pub async fn use_it() -> Result<(), redis_db::Error> {
        let db = Shop::connect().await?;
        let _ = db.carts();
        Ok(())
    }
}

fn main() {
    let _ = misspelt::use_it;
    let _ = malformed_client::use_it();
}
