//! Implicit pipelining for the shared connection.
//!
//! The shared connection's writer (`multiplex.rs`) sends whatever callers queued the moment it
//! wakes. With TCP_NODELAY every such write is its own TCP segment, and on a busy
//! runtime the queue runs dry after almost every command: the callers woken by one batch of
//! replies run one after another, and each of them wakes the driver, which sends that caller's
//! command alone. Without TCP_NODELAY the kernel's Nagle algorithm hides this by holding small
//! writes until the previous ones are acknowledged; measured on loopback at 16 tasks that gave
//! 0.43 segments per command against 1.3 with TCP_NODELAY, and about a third less CPU per
//! command in client and server (docs/PERFORMANCE.md).
//!
//! [`Batching`] gets the same batching without Nagle's wait for an acknowledgement: before each
//! write the writer yields once to the runtime (it goes to the back of its worker's queue), so
//! the callers that are already runnable queue their commands first, and one write carries them
//! all. On an idle runtime the writer is polled again at once: the cost is one extra poll per
//! batch, no timer and no added wait.
//!
//! A lone caller gains nothing from the yield (nobody else queues a command meanwhile), so when
//! yields gather nothing, the next writes go out at once: after 1, 2, 3 such yields in a row,
//! 1, 3, 7 writes go out unyielded before the next try. One yield that gathers resets it.

/// Whether the shared connection's writer yields before its next write.
#[derive(Debug, Default)]
pub(crate) struct Batching {
    /// Yields in a row that gathered nothing (capped).
    misses: u32,
    /// Writes still to send without yielding.
    skip: u32,
}

const MAX_MISSES: u32 = 3;

impl Batching {
    /// Whether to yield before this write (if so, report what it gathered to [`Self::gathered`]).
    pub fn yields_first(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    /// What the last yield gathered: `more`, whether other callers queued commands meanwhile.
    pub fn gathered(&mut self, more: bool) {
        if more {
            self.misses = 0;
        } else {
            self.misses = (self.misses + 1).min(MAX_MISSES);
            self.skip = (1 << self.misses) - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One write as the writer makes it: whether it yielded, and the yield gathered `more`.
    fn write(batching: &mut Batching, more: bool) -> char {
        if batching.yields_first() {
            batching.gathered(more);
            'y'
        } else {
            '.'
        }
    }

    #[test]
    fn a_lone_writer_stops_yielding_and_a_busy_one_keeps_yielding() {
        let mut batching = Batching::default();
        // Nothing gathered by the yields: each is followed by 1, 3, then 7 (capped) writes
        // sent at once.
        let lone: String = (0..20).map(|_| write(&mut batching, false)).collect();
        assert_eq!(lone, "y.y...y.......y.....");
        // Skipped writes first, then a yield that gathers: from then on every write yields.
        let busy: String = (0..6).map(|_| write(&mut batching, true)).collect();
        assert_eq!(busy, "..yyyy");
    }
}
