// The seed application's file as it stands: two pairs of names share a number without
// `alias_of`. One error, naming `alias_of`; the code using the enum adds no errors of its own.

#[redis_db::databases(config = "../fixtures/seed-app-redis-databases.yaml")]
pub enum RedisDatabase {}

async fn use_it() -> Result<(), redis_db::Error> {
    let db: RedisDatabaseClient = RedisDatabase::connect().await?;
    let _handle = db.database(RedisDatabase::ALL[0]);
    let _stats = db.stats();
    let _name: &str = RedisDatabase::ALL[0].name();
    Ok(())
}

fn main() {
    let _ = use_it();
    let _: Result<RedisDatabaseBlockingClient, _> = RedisDatabase::connect_blocking();
}
