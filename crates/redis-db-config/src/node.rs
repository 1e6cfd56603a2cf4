//! A YAML tree that keeps duplicate mapping keys.
//!
//! `serde_yaml::Value` rejects a duplicate key while parsing, which would abort the whole
//! parse with a message that names neither database nor fix. Deserializing into this tree
//! instead keeps both entries (in file order), so the duplicate becomes one more collected
//! error with a proper message, next to every other problem in the file.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One YAML node.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    /// Integers; `i128` holds every YAML integer serde_yaml produces.
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order, duplicates included.
    Map(Vec<(Node, Node)>),
    /// A value with a custom `!tag`; never valid in a config, kept only to report it.
    Tagged(String),
}

impl Node {
    /// What a user would call this kind of value, for "found ..." messages.
    pub fn describe(&self) -> String {
        match self {
            Node::Null => "null".to_owned(),
            Node::Bool(b) => format!("a boolean ({b})"),
            Node::Int(i) => format!("an integer ({i})"),
            Node::Float(f) => format!("a number ({f})"),
            Node::Str(s) => format!("a string ({s:?})"),
            Node::Seq(_) => "a list".to_owned(),
            Node::Map(_) => "a mapping".to_owned(),
            Node::Tagged(tag) => format!("a tagged value (!{tag})"),
        }
    }

    /// The text of a mapping key as written (for names in messages).
    pub fn key_text(&self) -> String {
        match self {
            Node::Str(s) => s.clone(),
            Node::Null => "null".to_owned(),
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::Float(f) => f.to_string(),
            other => other.describe(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        // Beyond i128 nothing is a valid size anyway; saturate so range checks reject it.
        Ok(Node::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        use de::VariantAccess;
        let (tag, variant): (String, _) = data.variant()?;
        let _ignored: Node = variant.newtype_variant()?;
        Ok(Node::Tagged(tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicate_keys_in_order() {
        let node: Node = serde_yaml::from_str("a: 1\nb: x\na: 2.5\n").expect("valid YAML");
        assert_eq!(
            node,
            Node::Map(vec![
                (Node::Str("a".into()), Node::Int(1)),
                (Node::Str("b".into()), Node::Str("x".into())),
                (Node::Str("a".into()), Node::Float(2.5)),
            ])
        );
    }

    #[test]
    fn odd_values_do_not_fail_the_parse() {
        for text in [
            "a: !foo 3",
            "a: 99999999999999999999999999",
            "a: .nan",
            "a: -.inf",
            "",
        ] {
            let node: Result<Node, _> = serde_yaml::from_str(text);
            assert!(node.is_ok(), "{text}: {node:?}");
        }
    }
}
