//! Write ledgers: every write carries a unique id, and what the server holds afterwards is
//! counted per id, never collected into a set, so that a write applied twice shows up as a
//! count of 2 instead of vanishing into the set. Used by the chaos, Sentinel and Cluster runs.

use std::collections::HashMap;

/// What became of one write, as the caller saw it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Acknowledged: must be held exactly once.
    Acked = 1,
    /// Failed before reaching the server, or refused by it: must not be held.
    NotApplied = 2,
    /// Timed out or broke mid-flight: held at most once.
    Unknown = 3,
}

impl Outcome {
    pub fn from_bits(bits: u8) -> Outcome {
        match bits & 0b11 {
            1 => Outcome::Acked,
            2 => Outcome::NotApplied,
            _ => Outcome::Unknown,
        }
    }
}

/// How many times each id is held, over any number of lists.
#[derive(Debug, Default)]
pub struct Tally {
    counts: HashMap<String, u32>,
}

impl Tally {
    pub fn new() -> Tally {
        Tally::default()
    }

    pub fn add(&mut self, id: impl Into<String>) {
        *self.counts.entry(id.into()).or_default() += 1;
    }

    pub fn extend(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            self.add(id);
        }
    }

    /// Times `id` is held.
    pub fn count(&self, id: &str) -> u32 {
        self.counts.get(id).copied().unwrap_or(0)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.count(id) > 0
    }

    /// Takes `id` out (for finding strays: what is left was never issued), returning its count.
    pub fn take(&mut self, id: &str) -> u32 {
        self.counts.remove(id).unwrap_or(0)
    }

    /// Every id held more than once, with its count, sorted.
    pub fn duplicates(&self) -> Vec<(String, u32)> {
        let mut twice: Vec<(String, u32)> = self
            .counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (id.clone(), *n))
            .collect();
        twice.sort();
        twice
    }

    /// Ids still held (after `take`), sorted.
    pub fn remaining(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.counts.keys().cloned().collect();
        ids.sort();
        ids
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// Every element of every list in `keys` on `connection`, tallied.
pub fn tally_lists(
    connection: &mut redis::Connection,
    keys: impl IntoIterator<Item = String>,
) -> Tally {
    let mut tally = Tally::new();
    for key in keys {
        let list: Vec<String> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query(connection)
            .unwrap_or_else(|e| panic!("LRANGE {key}: {e}"));
        tally.extend(list);
    }
    tally
}

/// The checks of one ledger: ids issued with their outcomes against what the server holds.
#[derive(Debug, Default)]
pub struct Audit {
    pub acked: u64,
    pub refused: u64,
    pub unknown: u64,
    pub unknown_applied: u64,
    /// `id xN` for every id held more than once.
    pub duplicates: Vec<String>,
    /// Acknowledged ids not held.
    pub lost: Vec<String>,
    /// Ids reported as not applied that are held.
    pub refused_but_applied: Vec<String>,
}

impl Audit {
    /// Records one issued id whose count was taken from the tally.
    pub fn record(&mut self, id: &str, outcome: Outcome, count: u32) {
        if count > 1 {
            self.duplicates.push(format!("{id} x{count}"));
        }
        match outcome {
            Outcome::Acked => {
                self.acked += 1;
                if count == 0 {
                    self.lost.push(id.to_owned());
                }
            }
            Outcome::NotApplied => {
                self.refused += 1;
                if count > 0 {
                    self.refused_but_applied.push(id.to_owned());
                }
            }
            Outcome::Unknown => {
                self.unknown += 1;
                self.unknown_applied += u64::from(count > 0);
            }
        }
    }

    pub fn issued(&self) -> u64 {
        self.acked + self.refused + self.unknown
    }

    /// One line per broken invariant (empty when all hold), each naming up to 10 ids.
    pub fn problems(&self, what: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for (list, broken) in [
            (&self.duplicates, "applied more than once"),
            (&self.lost, "acknowledged but missing"),
            (
                &self.refused_but_applied,
                "reported as not applied but held",
            ),
        ] {
            if !list.is_empty() {
                problems.push(format!(
                    "{what}: {} {broken}: {:?}",
                    list.len(),
                    &list[..list.len().min(10)]
                ));
            }
        }
        problems
    }
}
