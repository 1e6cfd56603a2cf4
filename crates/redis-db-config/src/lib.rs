#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
mod build;
mod error;
mod layer;
mod locate;
mod model;
mod names;
mod node;
mod parse;
mod raw;
mod read;
mod validate;
mod value;

pub use error::{ConfigError, ConfigErrors, Location};
pub use model::*;
pub use names::{is_keyword, is_reserved, is_snake_case, variant_name, RESERVED_NAMES};
pub use parse::{parse_file, parse_str, parse_str_with_files};

#[cfg(test)]
mod tests;
