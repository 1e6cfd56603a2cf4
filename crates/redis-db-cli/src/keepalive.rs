//! What the kernel says about the SDK's own socket: its TCP keepalive timer, read with `ss`.
//! Only the socket's owner could ask with `getsockopt`, and the SDK does not hand its sockets
//! out; the timer `ss -o` shows is the next best witness.

use std::time::Duration;

/// A socket carries the configured keepalive when its timer, restarted by the reply just read,
/// is within the configured idle time (the OS default, about two hours, is far beyond it).
pub fn carries(timer: Duration, idle: Duration) -> bool {
    timer <= idle + Duration::from_secs(1)
}

/// The client's own address (`addr=`) in a `CLIENT INFO` line.
pub fn client_addr(info: &str) -> Option<String> {
    info.split_whitespace()
        .find_map(|field| field.strip_prefix("addr="))
        .map(str::to_owned)
}

/// The keepalive timer of the local socket `local` (`host:port`), read with `ss`.
pub fn socket_keepalive(local: &str) -> Result<Duration, String> {
    let output = std::process::Command::new("ss")
        .args(["-tnoH", "state", "established", "src", local])
        .output()
        .map_err(|e| format!("cannot run `ss` ({e})"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.trim().is_empty() {
        return Err(format!(
            "no local socket {local} (a proxy or NAT in between?)"
        ));
    }
    text.lines()
        .find_map(keepalive_timer)
        .ok_or_else(|| format!("socket {local} has no keepalive timer: keepalive is off"))
}

/// `timer:(keepalive,1min59sec,0)` in an `ss -o` line, as a duration.
fn keepalive_timer(line: &str) -> Option<Duration> {
    let start = line.find("timer:(keepalive,")? + "timer:(keepalive,".len();
    let value = line[start..].split(',').next()?;
    parse_ss_time(value)
}

/// `ss` prints timers as `[Nmin][S[.MMM]sec|S.MMMms|MMMms]`, e.g. `59sec`, `1min59sec`, `119min`,
/// `5.123ms` (5 s 123 ms), `123ms`.
fn parse_ss_time(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if let Some(i) = rest.find("min") {
        total += Duration::from_secs(rest[..i].parse::<u64>().ok()? * 60);
        rest = &rest[i + 3..];
    }
    if rest.is_empty() {
        return Some(total);
    }
    if let Some(secs) = rest.strip_suffix("sec") {
        return Some(total + Duration::from_secs(secs.parse().ok()?));
    }
    let ms = rest.strip_suffix("ms")?;
    match ms.split_once('.') {
        Some((secs, millis)) => Some(
            total
                + Duration::from_secs(secs.parse().ok()?)
                + Duration::from_millis(millis.parse().ok()?),
        ),
        None => Some(total + Duration::from_millis(ms.parse().ok()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ss_timers_parse_in_every_form() {
        let s = Duration::from_secs;
        assert_eq!(parse_ss_time("59sec"), Some(s(59)));
        assert_eq!(parse_ss_time("1min59sec"), Some(s(119)));
        assert_eq!(parse_ss_time("119min"), Some(s(119 * 60)));
        assert_eq!(parse_ss_time("5.123ms"), Some(Duration::from_millis(5123)));
        assert_eq!(parse_ss_time("123ms"), Some(Duration::from_millis(123)));
        assert_eq!(parse_ss_time("soon"), None);
        assert_eq!(
            keepalive_timer("0 0 127.0.0.1:5 127.0.0.1:6 timer:(keepalive,44sec,0)"),
            Some(s(44))
        );
    }

    #[test]
    fn an_os_default_keepalive_timer_does_not_carry_the_configured_idle() {
        let s = Duration::from_secs;
        assert!(carries(s(59), s(60)));
        assert!(carries(s(60), s(60)));
        assert!(!carries(s(119 * 60), s(60)));
        assert!(!carries(s(75), s(60)));
    }

    #[test]
    fn client_info_gives_the_clients_own_address() {
        let info = "id=7 addr=127.0.0.1:53110 laddr=127.0.0.1:6379 fd=8 name= db=0\n";
        assert_eq!(client_addr(info).as_deref(), Some("127.0.0.1:53110"));
    }
}
