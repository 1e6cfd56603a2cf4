//! TLS for every topology: the rustls crypto provider, and the certificates of an endpoint's
//! `tls:` keys in the form redis-rs takes them.

use std::path::Path;
use std::sync::Once;

use redis::{ClientTlsConfig, ErrorKind, RedisError, TlsCertificates, TlsMode};
use redis_db_config::{ConnectionSettings, TlsOptions};

/// Makes sure rustls has a process-level crypto provider before the first TLS handshake.
///
/// redis-rs builds its rustls configuration with `ClientConfig::builder()`, which panics when
/// no provider is installed and the crate features cannot pick one (none compiled in, or both
/// ring and aws-lc-rs). We install ring, the one this crate compiles in, unless the
/// application installed a provider of its own first: that one is kept.
pub(crate) fn ensure_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Err means another thread installed one in the meantime: that one stays.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// `Secure`, or `Insecure` for `tls: { insecure: true }`.
pub(crate) fn mode(connection: &ConnectionSettings) -> TlsMode {
    if connection.tls_options.insecure {
        TlsMode::Insecure
    } else {
        TlsMode::Secure
    }
}

/// The CA and client certificate of an endpoint, read from their files; `None` when the
/// endpoint names neither (the built-in web roots then verify the server). A file that cannot
/// be read is an error naming its key and path (never its contents).
pub(crate) fn certificates(options: &TlsOptions) -> Result<Option<TlsCertificates>, RedisError> {
    let root_cert = options
        .ca_file
        .as_deref()
        .map(|path| read("ca_file", path))
        .transpose()?;
    let client_tls = match (&options.cert_file, &options.key_file) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read("cert_file", cert)?,
            client_key: read("key_file", key)?,
        }),
        // Validation pairs them; a lone one is reported there.
        _ => None,
    };
    if root_cert.is_none() && client_tls.is_none() {
        return Ok(None);
    }
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// The description of a [`refusal`]'s error, by which [`refused`] knows it.
const REFUSED: &str = "TLS handshake refused";

/// A TLS handshake that failed over a certificate (the server's, not signed by the CA we trust
/// or not naming the host; or ours, refused by the server) fails the same way every time: it is
/// turned into an error that is never retried and becomes [`crate::Error::Tls`], whose detail is
/// rustls's reason and what to check. Any other error is returned as it was. Matched on rustls's
/// wording, because redis-rs passes some errors on as text only (a cluster's "Failed to create
/// initial connections").
pub(crate) fn refusal(error: RedisError) -> RedisError {
    let text = error.to_string();
    let Some(hint) = certificate_refusal(&text) else {
        return error;
    };
    RedisError::from((
        ErrorKind::InvalidClientConfig,
        REFUSED,
        format!("{text}; {hint}"),
    ))
}

/// The detail of a [`refusal`] (rustls's reason and what to check); `None` for any other error.
pub(crate) fn refused(error: &RedisError) -> Option<&str> {
    (error.kind() == ErrorKind::InvalidClientConfig && error.to_string().starts_with(REFUSED))
        .then(|| error.detail())
        .flatten()
}

/// What to check, when `text` (a connection error) is a certificate refusal.
fn certificate_refusal(text: &str) -> Option<&'static str> {
    const SERVER_CERTIFICATE: &str = "invalid peer certificate: ";
    // Alerts a server sends when it refuses the client's certificate (or its absence).
    const CLIENT_CERTIFICATE_ALERTS: &[&str] = &[
        "CertificateRequired",
        "BadCertificate",
        "UnsupportedCertificate",
        "CertificateRevoked",
        "CertificateExpired",
        "CertificateUnknown",
        "UnknownCA",
        "AccessDenied",
    ];
    if let Some(at) = text.find(SERVER_CERTIFICATE) {
        let reason = &text[at + SERVER_CERTIFICATE.len()..];
        return Some(if reason.starts_with("UnknownIssuer") {
            "the server's certificate is not signed by the CA in `tls.ca_file` (or, without one, by a built-in web root)"
        } else if reason.contains("NotValidForName") || reason.contains("not valid for name") {
            "the server's certificate does not name the host connected to: connect by a name the certificate lists, or fix the certificate"
        } else {
            "check the server's certificate and `tls.ca_file`"
        });
    }
    let alert = text.split("received fatal alert: ").nth(1)?;
    CLIENT_CERTIFICATE_ALERTS
        .iter()
        .any(|name| alert.starts_with(name))
        .then_some("the server refused the client certificate (or its absence): check `tls.cert_file` and `tls.key_file`")
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, RedisError> {
    std::fs::read(path).map_err(|e| {
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        RedisError::from((
            ErrorKind::InvalidClientConfig,
            "cannot read a TLS file",
            format!(
                "`tls.{key}` names {}, which cannot be read ({e}); a relative path in a runtime file or the builder is resolved from the working directory",
                shown.display()
            ),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named_with_its_key() {
        let options = TlsOptions {
            cert_file: Some("no/such/client.pem".into()),
            key_file: Some("no/such/client.key".into()),
            ..TlsOptions::default()
        };
        let error = certificates(&options).unwrap_err().to_string();
        assert!(error.contains("`tls.cert_file` names"), "{error}");
        assert!(error.contains("no/such/client.pem"), "{error}");
        assert!(std::path::Path::new(&std::env::current_dir().unwrap())
            .join("no/such/client.pem")
            .to_str()
            .is_some_and(|p| error.contains(p)));
    }

    #[test]
    fn certificate_refusals_are_final_and_other_errors_pass() {
        let io = |text: &str| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                text.to_owned(),
            ))
        };
        for (text, hint) in [
            ("invalid peer certificate: UnknownIssuer", "`tls.ca_file`"),
            ("invalid peer certificate: certificate not valid for name \"127.0.0.1\"; certificate is only valid for DnsName(\"elsewhere.example\")", "does not name the host"),
            ("received fatal alert: CertificateRequired", "`tls.cert_file`"),
            ("Failed to create initial connections - received fatal alert: BadCertificate", "`tls.cert_file`"),
        ] {
            let error = refusal(io(text));
            assert_eq!(error.kind(), ErrorKind::InvalidClientConfig, "{text}");
            let detail = refused(&error).unwrap_or_else(|| panic!("not a refusal: {error}"));
            assert!(detail.starts_with(text) && detail.contains(hint), "{detail}");
            // The classifier's table sees it as final.
            assert_eq!(
                crate::retry::classify(&error, crate::retry::Stage::Connect),
                crate::retry::Verdict::TlsRefused,
                "{text}"
            );
        }
        for text in [
            "Connection refused (os error 111)",
            "received fatal alert: DecodeError",
        ] {
            let error = refusal(io(text));
            assert_eq!(error.kind(), ErrorKind::Io, "{text}");
            assert!(refused(&error).is_none(), "{text}");
        }
        // Another configuration error is not taken for a refusal.
        let other = RedisError::from((
            ErrorKind::InvalidClientConfig,
            "cannot read a TLS file",
            "x".to_owned(),
        ));
        assert!(refused(&other).is_none());
    }

    #[test]
    fn no_files_means_the_built_in_roots() {
        assert!(certificates(&TlsOptions::default()).unwrap().is_none());
    }

    #[test]
    fn the_provider_is_installed_once() {
        ensure_crypto_provider();
        let first = rustls::crypto::CryptoProvider::get_default().expect("installed");
        ensure_crypto_provider();
        let again = rustls::crypto::CryptoProvider::get_default().expect("still installed");
        assert!(std::sync::Arc::ptr_eq(first, again));
    }
}
