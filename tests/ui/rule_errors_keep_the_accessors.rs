// A file that parses but breaks rules is one error, the config error: the enum and every
// accessor whose name the file declares are still generated, so the call sites below add no
// `no method named users` of their own.

#[redis_db::databases(config = "rule_errors_keep_the_accessors.yaml")]
pub enum RedisDatabase {}

async fn use_it() -> Result<(), redis_db::Error> {
    let db = RedisDatabase::connect().await?;
    let _users: redis_db::Handle = db.users();
    let _sessions = db.sessions();
    let _cache = db.database(RedisDatabase::Cache);
    let _name: &str = RedisDatabase::Users.name();
    let _parsed: Result<RedisDatabase, ParseRedisDatabaseError> = "sessions".parse();
    Ok(())
}

fn main() {
    let _ = use_it();
    if let Ok(db) = RedisDatabase::connect_blocking() {
        let _: redis_db::blocking::Handle = db.cache();
    }
}
