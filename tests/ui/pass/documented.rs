// Every generated public item carries documentation, and the user's own doc comment and
// attributes are kept: with `missing_docs` denied, any undocumented item would fail.
#![deny(missing_docs, warnings)]
//! A crate whose enum and clients are all documented.

/// The shop's databases.
#[redis_db::databases(config = "../../fixtures/shop.yaml", client = ShopDb)]
#[derive(PartialOrd, Ord)]
pub enum Shop {}

fn main() {
    assert!(Shop::Orders < Shop::Carts);
    assert_eq!(Shop::ALL.len(), 3);
}
