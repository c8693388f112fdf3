//! The certificates enabled for SMTP, loaded as rustls credentials, and the
//! choice Exchange makes for a connector: the certificate whose names match the
//! connector's FQDN, else the edge's default (the newest valid SMTP certificate).

use std::{fs, sync::Arc, time::SystemTime};

use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer},
    sign::CertifiedKey,
};
use tracing::warn;

use super::CertificateStore;

/// One SMTP certificate with its key, ready for TLS.
#[derive(Debug, Clone)]
pub struct SmtpCertificate {
    /// SHA-1 thumbprint.
    pub thumbprint: String,
    /// DNS names (SANs, or the CN when there are none), lower-case.
    pub names: Vec<String>,
    /// Chain and signing key.
    pub certified: Arc<CertifiedKey>,
    /// Validity.
    pub not_before: SystemTime,
    /// Validity.
    pub not_after: SystemTime,
}

impl CertificateStore {
    /// Every certificate enabled for `smtp` whose key is present and loads,
    /// newest first. A certificate that fails to load is skipped with a warning.
    pub fn smtp_certificates(&self) -> Vec<SmtpCertificate> {
        let mut found = Vec::new();
        for info in self.inventory() {
            if !info.services.iter().any(|s| s == "smtp") || info.key_status != "present" {
                continue;
            }
            match self.load_smtp(&info.thumbprint, info.dns_names) {
                Ok(certificate) => found.push(certificate),
                Err(error) => warn!(thumbprint = %info.thumbprint, %error, "SMTP certificate not usable"),
            }
        }
        found.sort_by_key(|c| std::cmp::Reverse(c.not_before));
        found
    }

    fn load_smtp(&self, thumbprint: &str, mut names: Vec<String>) -> Result<SmtpCertificate, String> {
        let chain_text = fs::read_to_string(self.certificate_path(thumbprint)).map_err(|e| e.to_string())?;
        let chain: Vec<CertificateDer<'static>> = pem::parse_many(&chain_text)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|block| CertificateDer::from(block.into_contents()))
            .collect();
        let leaf = chain.first().ok_or("empty certificate file")?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| e.to_string())?;
        if names.is_empty()
            && let Some(cn) = parsed.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok())
        {
            names.push(cn.to_owned());
        }
        let validity = parsed.validity();
        let to_time = |t: x509_parser::time::ASN1Time| {
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
        };
        let (not_before, not_after) = (to_time(validity.not_before), to_time(validity.not_after));
        let key_text = fs::read_to_string(self.key_path(thumbprint)).map_err(|e| e.to_string())?;
        let block = pem::parse(&key_text).map_err(|e| e.to_string())?;
        let key: PrivateKeyDer<'static> = match block.tag() {
            "PRIVATE KEY" => PrivatePkcs8KeyDer::from(block.into_contents()).into(),
            "EC PRIVATE KEY" => PrivateSec1KeyDer::from(block.into_contents()).into(),
            "RSA PRIVATE KEY" => PrivatePkcs1KeyDer::from(block.into_contents()).into(),
            other => return Err(format!("unsupported key block {other}")),
        };
        let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
        Ok(SmtpCertificate {
            thumbprint: thumbprint.to_owned(),
            names: names.into_iter().map(|n| n.to_ascii_lowercase()).collect(),
            certified: Arc::new(CertifiedKey::new(chain, signing)),
            not_before,
            not_after,
        })
    }
}

/// Exchange's choice for a connector FQDN: a currently valid certificate with a
/// name matching `fqdn` (exactly, or by a `*.` wildcard one label deep), else the
/// newest currently valid one, else the newest at all (a broken TLS is still
/// better reported by the peer than silently not offered).
pub fn choose<'a>(certificates: &'a [SmtpCertificate], fqdn: &str, now: SystemTime) -> Option<&'a SmtpCertificate> {
    let fqdn = fqdn.to_ascii_lowercase();
    let valid = |c: &&SmtpCertificate| c.not_before <= now && now < c.not_after;
    let matches = |c: &&SmtpCertificate| c.names.iter().any(|name| name_matches(name, &fqdn));
    certificates
        .iter()
        .filter(valid)
        .find(matches)
        .or_else(|| certificates.iter().find(valid))
        .or_else(|| certificates.first())
}

fn name_matches(name: &str, fqdn: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(parent) => fqdn.split_once('.').is_some_and(|(_, rest)| rest == parent),
        None => name == fqdn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_matches("mail1.contoso.com", "mail1.contoso.com"));
        assert!(name_matches("*.contoso.com", "mail1.contoso.com"));
        assert!(!name_matches("*.contoso.com", "a.mail1.contoso.com"));
        assert!(!name_matches("*.contoso.com", "contoso.com"));
    }
}
