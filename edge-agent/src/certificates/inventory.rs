//! Listing the store: certificate metadata as `dsctl cert get` shows it.

use std::fs;

use proto::edge as pb;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{CertificateStore, Pending};
use crate::x509::{dns_names, thumbprint};

pub(super) fn list(store: &CertificateStore) -> Vec<pb::CertificateInfo> {
    let mut certificates = Vec::new();
    if let Ok(entries) = fs::read_dir(store.dir("certificates")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pem") {
                continue;
            }
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { continue };
            let Ok(text) = fs::read_to_string(&path) else { continue };
            let Some(leaf) = pem::parse_many(&text).ok().and_then(|blocks| blocks.into_iter().next()) else { continue };
            let metadata = store.metadata(&stem);
            let mut info = describe(leaf.contents());
            info.services = metadata.services;
            info.friendly_name = metadata.friendly_name;
            info.key_status = if store.key_path(&stem).exists() { "present" } else { "missing" }.to_owned();
            info.certificate_pem = pem::encode(&leaf);
            certificates.push(info);
        }
    }
    certificates.sort_by(|a, b| {
        let smtp = |c: &pb::CertificateInfo| !c.services.iter().any(|s| s == "smtp");
        (smtp(a), std::cmp::Reverse(&a.not_before)).cmp(&(smtp(b), std::cmp::Reverse(&b.not_before)))
    });
    if let Ok(entries) = fs::read_dir(store.dir("pending")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let Some(id) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            let Some(pending) = fs::read_to_string(&path).ok().and_then(|t| toml::from_str::<Pending>(&t).ok()) else {
                continue;
            };
            certificates.push(pb::CertificateInfo {
                thumbprint: format!("pending:{id}"),
                subject: pending.subject,
                dns_names: pending.dns_names,
                services: pending.services,
                key_status: "pending".to_owned(),
                friendly_name: pending.friendly_name,
                ..Default::default()
            });
        }
    }
    certificates
}

fn describe(der: &[u8]) -> pb::CertificateInfo {
    let Ok((_, certificate)) = X509Certificate::from_der(der) else {
        return pb::CertificateInfo { thumbprint: thumbprint(der), ..Default::default() };
    };
    let dns_names = dns_names(&certificate);
    let time = |t: x509_parser::time::ASN1Time| {
        t.to_datetime().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    };
    pb::CertificateInfo {
        thumbprint: thumbprint(der),
        sha256: domainsec_model::Fingerprint::of(der).into_string(),
        subject: certificate.subject().to_string(),
        issuer: certificate.issuer().to_string(),
        serial: certificate.raw_serial_as_string().replace(':', "").to_ascii_uppercase(),
        dns_names,
        not_before: time(certificate.validity().not_before),
        not_after: time(certificate.validity().not_after),
        ..Default::default()
    }
}
