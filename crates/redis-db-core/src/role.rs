//! Reading a `ROLE` reply: the one parser for "is this node the master?", asked by a Sentinel
//! endpoint's connect (`connector.rs`) and by the pool's recycle check (`pool.rs`).

use redis::{FromRedisValue, Value};

/// `ROLE`'s first element is `master` on a master (`slave`/`replica` or `sentinel` otherwise).
pub(crate) fn is_master(role: &Value) -> bool {
    let Value::Array(items) = role else {
        return false;
    };
    items
        .first()
        .cloned()
        .map(String::from_redis_value)
        .is_some_and(|role| role.is_ok_and(|role| role == "master"))
}

#[cfg(test)]
mod tests {
    use super::is_master;
    use redis::Value;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn only_a_master_reply_is_a_master() {
        assert!(is_master(&Value::Array(vec![
            bulk("master"),
            Value::Int(0)
        ])));
        assert!(!is_master(&Value::Array(vec![bulk("slave"), bulk("h")])));
        assert!(!is_master(&Value::Array(vec![])));
        assert!(!is_master(&bulk("master")));
    }
}
