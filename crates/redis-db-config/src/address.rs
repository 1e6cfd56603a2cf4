//! `redis://` / `rediss://` URLs applied to a [`ConnectionSettings`].

use url::{Host, Url};

use crate::model::{ConnectionSettings, Secret};

const DEFAULT_PORT: u16 = 6379;

impl ConnectionSettings {
    /// Sets host, port, username, password and TLS together from `redis://` or
    /// `rediss://[user[:password]@]host[:port]`. Credentials absent from the URL are cleared,
    /// because the URL describes the whole endpoint.
    ///
    /// The error text never contains the URL itself, so no password can leak through it.
    pub fn apply_url(&mut self, url: &str) -> Result<(), String> {
        // `url::ParseError`'s text describes the problem without echoing the input.
        let parsed = Url::parse(url).map_err(|e| format!("not a valid URL ({e})"))?;
        let tls = match parsed.scheme() {
            "redis" => false,
            "rediss" => true,
            other => {
                return Err(format!(
                    "unsupported scheme `{other}://` (expected redis:// or rediss://)"
                ))
            }
        };
        let host = match parsed.host() {
            Some(Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            // The redis crate wants the bare address, not the bracketed URL form.
            Some(Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err("the URL has no host".to_owned()),
        };
        let port = parsed.port().unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err("port 0 is not a usable TCP port".to_owned());
        }
        // A database number in the path would contradict the per-database numbers of
        // redis_databases; rejecting it beats silently ignoring it.
        if !matches!(parsed.path(), "" | "/") {
            return Err(format!(
                "the URL path `{}` selects a database, but each database's number comes from redis_databases; remove the path",
                parsed.path()
            ));
        }
        if parsed.fragment() == Some("insecure") {
            return Err(
                "the `#insecure` fragment is not supported; write `tls: { insecure: true }` (tests only) or, better, `tls: { ca_file: ... }` with the CA that signed the server's certificate"
                    .to_owned(),
            );
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(
                "query parameters and fragments are not supported in the URL; remove them"
                    .to_owned(),
            );
        }
        let username = decode(parsed.username(), "user name")?;
        let password = parsed
            .password()
            .map(|p| decode(p, "password"))
            .transpose()?;
        self.host = host;
        self.port = port;
        self.username = Some(username).filter(|u| !u.is_empty());
        self.password = password.filter(|p| !p.is_empty()).map(Secret::new);
        self.tls = tls;
        Ok(())
    }
}

/// Percent-decodes a URL component (users may encode `@`, `:` or `/` in a password).
fn decode(component: &str, what: &str) -> Result<String, String> {
    percent_decode(component)
        .ok_or_else(|| format!("the {what} in the URL is not valid UTF-8 after percent-decoding"))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl std::str::FromStr for crate::model::NodeAddress {
    type Err = String;

    /// `host:port`, `[ipv6]:port`; the port must be 1..=65535. The error explains the
    /// expected form without repeating the input.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or("an IPv6 address opened with `[` has no closing `]`")?;
            let port = after
                .strip_prefix(':')
                .ok_or("the address has no `:port` after the `]`")?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("the part in brackets is not an IPv6 address".to_owned());
            }
            (host, port)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or("the address has no `:port`")?;
            if host.contains(':') {
                return Err(
                    "the host contains `:`; write an IPv6 address in brackets (`[::1]:7000`) and no `redis://` scheme"
                        .to_owned(),
                );
            }
            (host, port)
        };
        if host.is_empty() {
            return Err("the address has no host".to_owned());
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '@')
        {
            return Err("the host contains a space, `/` or `@`".to_owned());
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("`{port}` is not a TCP port between 1 and 65535")),
        };
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}
