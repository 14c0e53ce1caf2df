//! The TLS settings of a connection: which URLs ask for TLS, and the
//! configured certificate files (feature `tls`).

use crate::error::{BackendError, ConfigError};

use super::RedisConfig;

/// Whether `url` asks for TLS (`rediss://`, `valkeys://`).
fn is_tls(url: &str) -> bool {
    ["rediss:", "valkeys:"].iter().any(|scheme| {
        url.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    })
}

/// Checks the TLS side of `urls` and `config`: a TLS URL needs the crate's
/// `tls` feature, and TLS files need a TLS URL. Returns whether the
/// configured TLS files are to be used.
pub(crate) fn uses_files(urls: &[&str], config: &RedisConfig) -> Result<bool, BackendError> {
    let tls = urls.iter().any(|u| is_tls(u));
    if cfg!(not(feature = "tls")) && tls {
        return Err(BackendError::InvalidConfig(ConfigError::OutOfRange {
            field: "url",
            reason: "a `rediss://` URL needs the crate's `tls` feature",
        }));
    }
    #[cfg(feature = "tls")]
    {
        let has_files = config.tls_ca_file().is_some() || config.tls_client_cert().is_some();
        if has_files && !tls {
            return Err(BackendError::InvalidConfig(ConfigError::OutOfRange {
                field: "tls_ca_file",
                reason: "TLS files need a `rediss://` URL",
            }));
        }
        Ok(has_files)
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = config;
        Ok(false)
    }
}

/// The configured TLS files, read (feature `tls`).
#[cfg(feature = "tls")]
pub(crate) fn certificates(config: &RedisConfig) -> Result<::redis::TlsCertificates, BackendError> {
    use ::redis::{ClientTlsConfig, TlsCertificates};
    const OP: &str = "connect";
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| BackendError::Tls {
            op: OP,
            source: format!("cannot read the {what} `{}`: {e}", path.display()).into(),
        })
    };
    let root_cert = match config.tls_ca_file() {
        Some(path) => Some(read(path, "CA file")?),
        None => None,
    };
    let client_tls = match config.tls_client_cert() {
        Some((cert, key)) => Some(ClientTlsConfig {
            client_cert: read(cert, "client certificate")?,
            client_key: read(key, "client key")?,
        }),
        None => None,
    };
    Ok(TlsCertificates {
        client_tls,
        root_cert,
    })
}
