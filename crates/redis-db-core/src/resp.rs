//! Reading RESP2/RESP3 replies off the shared connection's socket (`multiplex.rs`).
//!
//! Two steps per reply. [`FrameScan`] finds where a reply ends, resumably: a reply that arrives
//! over many reads is scanned once in all, not once per read (a large `LRANGE` would otherwise
//! cost quadratic time). [`decode`] then builds the `Value` of the complete frame in one pass:
//! the frames ordinary commands get back (simple and bulk strings, integers, nulls, arrays,
//! maps, sets) are built here; every other kind (errors, doubles, booleans, big numbers,
//! verbatim strings, attributes, pushes) and anything malformed is handed to redis-rs's own
//! parser, so that a reply has exactly the `Value` every other connection produces.

use redis::{ErrorKind, RedisError, Value};

/// redis-rs's limit too: deeper nesting is refused, not recursed into.
const MAX_DEPTH: usize = 100;

/// Where the scan of the frame at the start of the buffer stands.
#[derive(Debug, Default)]
pub(crate) struct FrameScan {
    /// Bytes of the frame scanned so far (always at an element's start).
    scanned: usize,
    /// Elements still expected by each open aggregate, outermost first.
    open: Vec<u64>,
}

impl FrameScan {
    /// The length of the complete frame at the start of `buf`, or `None` while it is incomplete
    /// (call again with the same buffer grown). Resets itself once a frame is complete.
    pub fn complete_frame(&mut self, buf: &[u8]) -> Result<Option<usize>, RedisError> {
        loop {
            let Some((element, next)) = header(buf, self.scanned)? else {
                return Ok(None);
            };
            match element {
                Element::Done => {
                    self.scanned = next;
                    loop {
                        match self.open.last_mut() {
                            None => {
                                self.scanned = 0;
                                return Ok(Some(next));
                            }
                            Some(remaining) if *remaining > 1 => {
                                *remaining -= 1;
                                break;
                            }
                            Some(_) => {
                                self.open.pop();
                            }
                        }
                    }
                }
                Element::Aggregate(count) => {
                    if self.open.len() >= MAX_DEPTH {
                        return Err(protocol_error("maximum nesting depth exceeded"));
                    }
                    self.scanned = next;
                    self.open.push(count);
                }
            }
        }
    }
}

/// What one header starts.
enum Element {
    /// A whole element (a line, a bulk string with its payload, an empty aggregate).
    Done,
    /// An aggregate of this many elements (at least one), which follow.
    Aggregate(u64),
}

/// The element whose header starts at `at`, and where what follows it starts; `None` while the
/// buffer does not hold all of it (a bulk string's payload included).
fn header(buf: &[u8], at: usize) -> Result<Option<(Element, usize)>, RedisError> {
    let Some(&tag) = buf.get(at) else {
        return Ok(None);
    };
    let Some((line, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    let element = match tag {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => (Element::Done, next),
        b'$' | b'!' | b'=' => match length(line)? {
            None => (Element::Done, next),
            Some(len) => {
                let end = next
                    .checked_add(len)
                    .and_then(|end| end.checked_add(2))
                    .ok_or_else(|| protocol_error("bulk length out of range"))?;
                if buf.len() < end {
                    return Ok(None);
                }
                (Element::Done, end)
            }
        },
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = length(line)?.unwrap_or(0) as u64;
            let count = match tag {
                b'%' => count.saturating_mul(2),
                b'|' => count.saturating_mul(2).saturating_add(1),
                _ => count,
            };
            if count == 0 {
                (Element::Done, next)
            } else {
                (Element::Aggregate(count), next)
            }
        }
        other => {
            return Err(protocol_error(format!(
                "unexpected reply type byte {other:#04x}"
            )))
        }
    };
    Ok(Some(element))
}

/// The line starting at `at` (without its CRLF) and where the next one starts.
fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let cr = rest.iter().position(|&b| b == b'\r')?;
    // A lone CR cannot occur in a header; a CR at the end of the buffer may be followed by LF.
    (rest.get(cr + 1)? == &b'\n').then(|| (&rest[..cr], at + cr + 2))
}

/// A length header: `None` for a negative one (a null), else the length.
fn length(line: &[u8]) -> Result<Option<usize>, RedisError> {
    let text = std::str::from_utf8(line).map_err(|_| protocol_error("length is not a number"))?;
    let value: i64 = text
        .trim()
        .parse()
        .map_err(|_| protocol_error("length is not a number"))?;
    Ok(usize::try_from(value).ok())
}

/// The `Value` of the complete frame `frame` (as [`FrameScan`] delimited it).
pub(crate) fn decode(frame: &[u8]) -> Result<Value, RedisError> {
    match build(frame, 0, 0) {
        Some((value, end)) if end == frame.len() => Ok(value),
        _ => redis::parse_redis_value(frame),
    }
}

/// Builds the value at `at`: `None` hands the whole frame to redis-rs's parser instead.
fn build(frame: &[u8], at: usize, depth: usize) -> Option<(Value, usize)> {
    let tag = *frame.get(at)?;
    let (line, next) = line(frame, at + 1)?;
    match tag {
        b'+' if line == b"OK" => Some((Value::Okay, next)),
        b'+' => Some((
            Value::SimpleString(std::str::from_utf8(line).ok()?.to_owned()),
            next,
        )),
        b':' => Some((
            Value::Int(std::str::from_utf8(line).ok()?.parse().ok()?),
            next,
        )),
        b'_' => Some((Value::Nil, next)),
        b'$' => match length(line).ok()? {
            None => Some((Value::Nil, next)),
            Some(len) => {
                let end = next.checked_add(len)?;
                let payload = frame.get(next..end)?;
                (frame.get(end..end + 2)? == b"\r\n")
                    .then(|| (Value::BulkString(payload.to_vec()), end + 2))
            }
        },
        b'*' | b'~' | b'%' if depth < MAX_DEPTH => {
            let Some(count) = length(line).ok()? else {
                // RESP2's null array (and redis-rs reads a negative set as one too).
                return (tag != b'%').then_some((Value::Nil, next));
            };
            let items = if tag == b'%' {
                count.checked_mul(2)?
            } else {
                count
            };
            // A count larger than the frame is malformed; it must not size an allocation.
            if items > frame.len() {
                return None;
            }
            let mut values = Vec::with_capacity(items);
            let mut at = next;
            for _ in 0..items {
                let (value, after) = build(frame, at, depth + 1)?;
                values.push(value);
                at = after;
            }
            let value = match tag {
                b'*' => Value::Array(values),
                b'~' => Value::Set(values),
                _ => Value::Map(pairs(values)),
            };
            Some((value, at))
        }
        // The rare kinds: delimited here, built by redis-rs.
        b'-' | b',' | b'#' | b'(' | b'!' | b'=' | b'|' | b'>' => {
            let mut scan = FrameScan::default();
            let len = scan.complete_frame(frame.get(at..)?).ok()??;
            let value = redis::parse_redis_value(frame.get(at..at + len)?).ok()?;
            Some((value, at + len))
        }
        _ => None,
    }
}

fn pairs(values: Vec<Value>) -> Vec<(Value, Value)> {
    let mut values = values.into_iter();
    let mut pairs = Vec::with_capacity(values.len() / 2);
    while let (Some(key), Some(value)) = (values.next(), values.next()) {
        pairs.push((key, value));
    }
    pairs
}

/// A reply that breaks the protocol (or the order of replies): the connection cannot go on.
pub(crate) fn protocol_error(detail: impl Into<String>) -> RedisError {
    RedisError::from((
        ErrorKind::Parse,
        "invalid reply from the server",
        detail.into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of every kind, nested, as a server sends them.
    fn samples() -> Vec<&'static [u8]> {
        vec![
            b"+OK\r\n",
            b"+PONG\r\n",
            b"-ERR unknown command 'FOO'\r\n",
            b"-LOADING Redis is loading the dataset in memory\r\n",
            b":0\r\n",
            b":-42\r\n",
            b"$5\r\nhello\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"$4\r\na\r\nb\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*3\r\n:1\r\n$1\r\nx\r\n*2\r\n+OK\r\n-WRONGTYPE no\r\n",
            b"%2\r\n+server\r\n$5\r\nredis\r\n+proto\r\n:3\r\n",
            b"~2\r\n:1\r\n:2\r\n",
            b"_\r\n",
            b",3.25\r\n",
            b",inf\r\n",
            b"#t\r\n",
            b"#f\r\n",
            b"(3492890328409238509324850943850943825024385\r\n",
            b"!21\r\nSYNTAX invalid syntax\r\n",
            b"=15\r\ntxt:Some string\r\n",
            b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*1\r\n:2\r\n",
            b">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$3\r\nmsg\r\n",
            b"*2\r\n%1\r\n+a\r\n~1\r\n_\r\n>2\r\n+pubsub\r\n:1\r\n",
            b"*1\r\n=8\r\nmkd:# hi\r\n",
        ]
    }

    #[test]
    fn every_kind_of_frame_decodes_as_redis_rs_parses_it() {
        for frame in samples() {
            let mut scan = FrameScan::default();
            assert_eq!(
                scan.complete_frame(frame).unwrap(),
                Some(frame.len()),
                "{}",
                String::from_utf8_lossy(frame)
            );
            assert_eq!(
                decode(frame).unwrap(),
                redis::parse_redis_value(frame).unwrap(),
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    /// Every prefix of a frame is incomplete, fed to one scan byte by byte as reads arrive; the
    /// frame completes exactly at its end, and the next frame starts fresh.
    #[test]
    fn a_frame_arriving_in_pieces_completes_exactly_at_its_end() {
        let all: Vec<u8> = samples().concat();
        let mut scan = FrameScan::default();
        let mut start = 0;
        let mut decoded = Vec::new();
        for end in 1..=all.len() {
            if let Some(len) = scan.complete_frame(&all[start..end]).unwrap() {
                assert_eq!(start + len, end, "completes at the byte that ends it");
                decoded.push(decode(&all[start..end]).unwrap());
                start = end;
            }
        }
        let expected: Vec<Value> = samples()
            .into_iter()
            .map(|frame| redis::parse_redis_value(frame).unwrap())
            .collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn a_large_array_is_scanned_once_across_reads() {
        let mut frame = b"*100000\r\n".to_vec();
        for i in 0..100_000 {
            frame.extend_from_slice(format!("${}\r\n{i}\r\n", i.to_string().len()).as_bytes());
        }
        let mut scan = FrameScan::default();
        let mut complete = None;
        for end in (4096..frame.len()).step_by(4096).chain([frame.len()]) {
            complete = scan.complete_frame(&frame[..end]).unwrap();
            // Never further than the buffer; resumes where it stopped.
            assert!(scan.scanned <= end);
        }
        assert_eq!(complete, Some(frame.len()));
        let Value::Array(items) = decode(&frame).unwrap() else {
            panic!("an array")
        };
        assert_eq!(items.len(), 100_000);
    }

    #[test]
    fn garbage_is_a_parse_error_not_a_panic() {
        for bad in [
            &b"?what\r\n"[..],
            b"$abc\r\n",
            b"*x\r\n",
            b"$99999999999999999999999\r\n",
        ] {
            let error = FrameScan::default().complete_frame(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Parse, "{error}");
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1);
        assert!(FrameScan::default()
            .complete_frame(deep.as_bytes())
            .is_err());
        // A huge count in a complete-looking frame does not allocate or panic.
        assert!(decode(b"*9999999999\r\n").is_err());
        // A malformed integer in a frame the scanner accepts falls back to redis-rs's error.
        assert!(decode(b":12x\r\n").is_err());
    }
}
