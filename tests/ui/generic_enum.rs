// A misshapen enum is one error: the items are still generated from the config, so the code
// below compiles otherwise.
#[redis_db::databases(config = "../fixtures/shop.yaml")]
pub enum Shop<T> {}

fn main() {
    let _ = Shop::connect();
    let _ = Shop::CartsMirror.alias_of();
}
