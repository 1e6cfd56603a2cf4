//! Every item `#[redis_db::databases]` generates, checked on a config with other names than
//! the default one (`tests/fixtures/shop.yaml`) and on the seed application's file.

use std::collections::HashSet;
use std::str::FromStr;

mod shop {
    /// The shop's databases.
    #[redis_db::databases(config = "tests/fixtures/shop.yaml", client = ShopDb)]
    #[derive(PartialOrd, Ord)]
    pub(crate) enum Shop {}
}

mod seed {
    #[redis_db::databases(config = "tests/fixtures/seed-with-aliases.yaml")]
    pub enum RedisDatabase {}
}

mod private {
    // Private enum, default client names: the generated items take its visibility.
    #[redis_db::databases(config = "tests/fixtures/shop.yaml")]
    #[allow(dead_code)]
    enum Hidden {}

    pub fn names() -> Vec<&'static str> {
        Hidden::ALL.iter().map(|d| d.name()).collect()
    }

    #[allow(dead_code)]
    fn types_exist(
        c: &HiddenClient,
        b: &HiddenBlockingClient,
    ) -> (redis_db::Handle, redis_db::blocking::Handle) {
        (c.orders(), b.orders())
    }

    #[allow(dead_code)]
    fn parse_error_exists(e: ParseHiddenError) -> String {
        e.to_string()
    }
}

use shop::{ParseShopError, Shop, ShopDb, ShopDbBlocking};

#[test]
fn variants_follow_the_file_order() {
    assert_eq!(Shop::ALL, &[Shop::Orders, Shop::Carts, Shop::CartsMirror]);
    for (position, db) in Shop::ALL.iter().enumerate() {
        assert_eq!(*db as usize, position);
    }
}

#[test]
fn names_numbers_descriptions_and_aliases() {
    assert_eq!(Shop::Orders.name(), "orders");
    assert_eq!(Shop::Carts.name(), "carts");
    assert_eq!(Shop::CartsMirror.name(), "carts_mirror");

    assert_eq!(Shop::Orders.index(), 0);
    assert_eq!(Shop::Carts.index(), 3);
    assert_eq!(Shop::CartsMirror.index(), 3);

    assert_eq!(Shop::Orders.description(), "");
    assert_eq!(
        Shop::Carts.description(),
        "Shopping carts, one hash per visitor"
    );

    assert_eq!(Shop::Orders.alias_of(), None);
    assert_eq!(Shop::Carts.alias_of(), None);
    assert_eq!(Shop::CartsMirror.alias_of(), Some(Shop::Carts));
}

#[test]
fn accessors_are_const() {
    const NAME: &str = Shop::Carts.name();
    const INDEX: u32 = Shop::Carts.index();
    const DESCRIPTION: &str = Shop::Orders.description();
    const ALIAS: Option<Shop> = Shop::CartsMirror.alias_of();
    const COUNT: usize = Shop::ALL.len();
    assert_eq!(
        (NAME, INDEX, DESCRIPTION, ALIAS, COUNT),
        ("carts", 3, "", Some(Shop::Carts), 3)
    );
}

#[test]
fn from_str_and_display_use_the_yaml_names() {
    for db in Shop::ALL {
        assert_eq!(Shop::from_str(db.name()), Ok(*db));
        assert_eq!(db.to_string(), db.name());
        assert_eq!(db.to_string().parse::<Shop>(), Ok(*db));
    }
    // The variant's name is not the YAML name.
    assert!("Carts".parse::<Shop>().is_err());

    let error: ParseShopError = "basket".parse::<Shop>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown database `basket`; expected one of: orders, carts, carts_mirror"
    );
    assert_eq!(error.name(), "basket");
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error.clone());
    assert_eq!(boxed.to_string(), error.to_string());
    assert!(format!("{error:?}").contains("basket"));
}

#[test]
fn derives_debug_clone_copy_eq_hash() {
    let db = Shop::Carts;
    let copy = db;
    #[allow(clippy::clone_on_copy)]
    let clone = db.clone();
    assert_eq!(copy, clone);
    assert_ne!(Shop::Carts, Shop::CartsMirror);
    assert_eq!(format!("{db:?}"), "Carts");
    let set: HashSet<Shop> = Shop::ALL.iter().copied().collect();
    assert_eq!(set.len(), 3);
    // The user's own derives are kept next to the generated ones.
    assert!(Shop::Orders < Shop::CartsMirror);
}

#[test]
fn client_methods_have_the_right_types() {
    fn async_client(c: &ShopDb) -> [redis_db::Handle; 4] {
        [
            c.orders(),
            c.carts(),
            c.carts_mirror(),
            c.database(Shop::Carts),
        ]
    }
    fn blocking_client(c: &ShopDbBlocking) -> [redis_db::blocking::Handle; 4] {
        [
            c.orders(),
            c.carts(),
            c.carts_mirror(),
            c.database(Shop::Carts),
        ]
    }
    fn async_stats(c: &ShopDb) -> redis_db::Stats {
        c.stats()
    }
    fn blocking_stats(c: &ShopDbBlocking) -> redis_db::Stats {
        c.stats()
    }
    async fn async_health(c: &ShopDb) -> redis_db::HealthReport {
        c.health().await
    }
    fn blocking_health(c: &ShopDbBlocking) -> redis_db::HealthReport {
        c.health()
    }
    fn connect() -> impl std::future::Future<Output = Result<ShopDb, redis_db::Error>> {
        Shop::connect()
    }
    fn connect_blocking() -> Result<ShopDbBlocking, redis_db::Error> {
        Shop::connect_blocking()
    }
    fn builder() -> redis_db::Builder<Shop> {
        Shop::builder()
    }
    fn assert_client<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    assert_client::<ShopDb>();
    assert_client::<ShopDbBlocking>();
    let _ = (
        async_client,
        blocking_client,
        async_stats,
        blocking_stats,
        async_health,
        blocking_health,
        connect,
        connect_blocking,
        builder,
    );
}

#[test]
fn the_enum_is_tied_to_its_yaml_and_clients() {
    use redis_db::__private::DatabaseEnum;
    assert_eq!(
        <Shop as DatabaseEnum>::CONFIG_FILE,
        "tests/fixtures/shop.yaml"
    );
    assert_eq!(
        <Shop as DatabaseEnum>::CONFIG_YAML,
        include_str!("fixtures/shop.yaml")
    );
    fn same<T>(_: Option<T>, _: Option<T>) {}
    same(None::<<Shop as DatabaseEnum>::Client>, None::<ShopDb>);
    same(
        None::<<Shop as DatabaseEnum>::BlockingClient>,
        None::<ShopDbBlocking>,
    );
}

#[test]
fn private_enums_work_too() {
    assert_eq!(private::names(), ["orders", "carts", "carts_mirror"]);
}

#[test]
fn the_seed_file_with_its_aliases_declared() {
    use seed::RedisDatabase as Db;
    assert_eq!(Db::ALL.len(), 14);
    let expected = [
        ("main", 0),
        ("knowledge", 1),
        ("prompts", 2),
        ("agents", 3),
        ("metrics", 4),
        ("cache", 5),
        ("sessions", 6),
        ("workflows", 7),
        ("monitoring", 7),
        ("logs", 8),
        ("temp", 9),
        ("audit", 10),
        ("analytics", 11),
        ("codebase", 11),
    ];
    let actual: Vec<(&str, u32)> = Db::ALL.iter().map(|d| (d.name(), d.index())).collect();
    assert_eq!(actual, expected);
    assert_eq!(Db::Monitoring.alias_of(), Some(Db::Workflows));
    assert_eq!(Db::Codebase.alias_of(), Some(Db::Analytics));
    assert_eq!(Db::ALL.iter().filter(|d| d.alias_of().is_some()).count(), 2);
    assert_eq!(Db::Temp.description(), "Temporary data and scratch space");
    assert_eq!("knowledge".parse::<Db>(), Ok(Db::Knowledge));

    fn methods(c: &seed::RedisDatabaseClient) -> Vec<redis_db::Handle> {
        vec![
            c.main(),
            c.knowledge(),
            c.prompts(),
            c.agents(),
            c.metrics(),
            c.cache(),
            c.sessions(),
            c.workflows(),
            c.monitoring(),
            c.logs(),
            c.temp(),
            c.audit(),
            c.analytics(),
            c.codebase(),
        ]
    }
    let _ = methods;
    let _ = |c: &seed::RedisDatabaseBlockingClient| -> redis_db::blocking::Handle { c.codebase() };
}
