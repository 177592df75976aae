//! TLS to the broker (`mqtts://`): rustls with the ring provider, the CA from `mqtt.ca_file` or the
//! system roots, and an optional client certificate for mutual TLS.
//!
//! ring rather than rustls' default aws-lc: it cross-compiles for armv7 and aarch64 with nothing but
//! the C cross compiler, no cmake, and keeps the binary smaller.

use crate::config::MqttConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// Builds the client TLS config, or says which file is at fault and why.
pub fn client_config(m: &MqttConfig) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match &m.ca_file {
        Some(path) => {
            for cert in certs(path)? {
                roots.add(cert).map_err(|e| format!("mqtt.ca_file {}: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!("loading the system CA certificates: {e}");
            }
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err("no CA certificate to verify the broker with (set mqtt.ca_file)".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots);
    let config = match (&m.client_cert_file, &m.client_key_file) {
        (Some(cert), Some(key)) => {
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("mqtt.client_key_file {}: {e}", key.display()))?;
            builder.with_client_auth_cert(certs(cert)?, key).map_err(|e| format!("mqtt client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let what = || format!("certificate file {}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", what()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", what()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let m = MqttConfig { ca_file: Some(dir.path().join("nope.pem")), ..Default::default() };
        let e = client_config(&m).unwrap_err();
        assert!(e.contains("nope.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let m = MqttConfig { ca_file: Some(empty), ..Default::default() };
        assert!(client_config(&m).unwrap_err().contains("no PEM certificate"));
    }
}
