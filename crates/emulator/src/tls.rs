//! The HTTPS side: a CA and a leaf certificate generated at start (rcgen), served with rustls.
//!
//! A separate leaf (CA:FALSE, SAN 127.0.0.1 / ::1 / localhost, serverAuth) signed by the CA is
//! required: webpki refuses a self-signed CA certificate presented as a server certificate.
//! Clients trust the CA alone (`SSL_CERT_FILE`, or fabrik's extra-CA option); nothing here or
//! anywhere else turns certificate verification off.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::EmulatorError;

/// The generated certificates, ready to serve.
pub(crate) struct Generated {
    pub(crate) server: Arc<rustls::ServerConfig>,
    /// The CA certificate clients should trust, in PEM.
    pub(crate) ca_pem: String,
}

/// A fresh CA, and a leaf for the loopback names plus `host` (when it names something else).
pub(crate) fn generate(host: &str) -> Result<Generated, EmulatorError> {
    let err = |what: &str, e: &dyn std::fmt::Display| EmulatorError::Tls(format!("{what}: {e}"));
    let ca_key = KeyPair::generate().map_err(|e| err("CA key", &e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA", &e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "fabrik emulator local CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| err("CA", &e))?;
    let issuer = Issuer::from_params(&ca, &ca_key);

    let leaf_key = KeyPair::generate().map_err(|e| err("leaf key", &e))?;
    let mut names = vec!["localhost".to_string()];
    let host = host.trim_matches(['[', ']']);
    let host_ip = host.parse::<IpAddr>().ok();
    if host_ip.is_none() && !host.is_empty() && host != "localhost" {
        names.push(host.to_string());
    }
    let mut leaf = CertificateParams::new(names).map_err(|e| err("leaf", &e))?;
    let mut ips = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    if let Some(ip) = host_ip.filter(|ip| !ip.is_unspecified() && !ips.contains(ip)) {
        ips.push(ip);
    }
    leaf.subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.distinguished_name
        .push(DnType::CommonName, "fabrik emulator");
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| err("leaf", &e))?;

    // An explicit provider: the process-wide default may be unset or another one.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .map_err(|e| err("TLS config", &e))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Generated {
        server: Arc::new(server),
        ca_pem: ca_cert.pem(),
    })
}
