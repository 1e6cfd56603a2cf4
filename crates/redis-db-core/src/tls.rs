//! TLS for every topology: the rustls crypto provider, and the certificates of an endpoint's
//! `tls:` keys in the form redis-rs takes them.

use std::path::Path;
use std::sync::Once;

use redis::{ClientTlsConfig, ErrorKind, RedisError, TlsCertificates, TlsMode};
use redis_db_config::{Connection, TlsOptions};

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
pub(crate) fn mode(connection: &Connection) -> TlsMode {
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
