use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A test PKI written as PEM files into a directory: a CA, a server
/// certificate for `127.0.0.1` and `localhost` signed by it, a client
/// certificate signed by it, and a second, unrelated CA (to be the wrong one).
#[derive(Debug)]
pub struct TestPki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate signed by the unrelated CA.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
    pub other_ca: PathBuf,
    /// A server certificate signed by the CA for `elsewhere.test` only.
    pub misnamed_cert: PathBuf,
    pub misnamed_key: PathBuf,
}

fn ca(name: &str) -> (Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-sign the CA");
    (cert, key)
}

fn leaf(
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &(Certificate, KeyPair),
) -> (String, String) {
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(sans).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let key = KeyPair::generate().expect("leaf key");
    let cert = params
        .signed_by(&key, &issuer.0, &issuer.1)
        .expect("sign the leaf");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

impl TestPki {
    /// Generates everything in-process and writes it under `dir`.
    pub fn generate(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("create the PKI dir");
        let ca_pair = ca("composite-metrics test CA");
        let other = ca("an unrelated CA");
        let (server_cert, server_key) = leaf(
            "redis-server",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca_pair,
        );
        let (client_cert, client_key) = leaf(
            "cm-client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca_pair,
        );
        let (stranger_cert, stranger_key) =
            leaf("stranger", &[], ExtendedKeyUsagePurpose::ClientAuth, &other);
        let (misnamed_cert, misnamed_key) = leaf(
            "elsewhere",
            &["elsewhere.test"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca_pair,
        );
        Self {
            dir: dir.to_owned(),
            misnamed_cert: write(dir, "misnamed.pem", &misnamed_cert),
            misnamed_key: write(dir, "misnamed.key", &misnamed_key),
            ca: write(dir, "ca.pem", &ca_pair.0.pem()),
            server_cert: write(dir, "server.pem", &server_cert),
            server_key: write(dir, "server.key", &server_key),
            client_cert: write(dir, "client.pem", &client_cert),
            client_key: write(dir, "client.key", &client_key),
            stranger_cert: write(dir, "stranger.pem", &stranger_cert),
            stranger_key: write(dir, "stranger.key", &stranger_key),
            other_ca: write(dir, "other-ca.pem", &other.0.pem()),
        }
    }
}

impl TestPki {
    /// Generates a PKI in a fresh temp dir, removed on drop.
    pub fn generate_temp() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cm-pki-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        Self::generate(&dir)
    }

    /// The server's TLS options with this PKI.
    pub fn server_options(&self, auth_clients: bool) -> super::TlsOptions {
        super::TlsOptions {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            ca: self.ca.clone(),
            auth_clients,
        }
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
