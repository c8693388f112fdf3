//! What a TLS session negotiated, for the `Received:` header and the protocol
//! log lines the paper shows (`*` subject, issuer, serial, thumbprint, names).

use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{
    protocol_log::{Event, SessionLog},
    x509::{dns_names, thumbprint},
};

/// The negotiated parameters of one TLS session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1_3`, `TLSv1_2`.
    pub protocol: String,
    /// `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The peer's certificate chain (DER), leaf first; empty when none was presented.
    pub peer_certificates: Vec<Vec<u8>>,
}

impl TlsInfo {
    /// Reads the parameters off a finished handshake.
    pub fn from_connection(connection: &rustls::CommonState) -> Self {
        Self {
            protocol: connection.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default(),
            cipher: connection.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default(),
            peer_certificates: connection
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default(),
        }
    }

    /// The comment for a `Received:` header: `(TLSv1_3 cipher TLS13_AES_256_GCM_SHA384)`.
    pub fn received_comment(&self) -> String {
        format!("({} cipher {})", self.protocol, self.cipher)
    }
}

/// Logs a certificate as the paper's samples do: a heading line, then one `*`
/// line each for subject, issuer, serial, thumbprint and alternate names.
pub fn log_certificate(log: &mut SessionLog, heading: &str, certificate: Option<&CertificateDer<'_>>) {
    if !log.is_enabled() {
        return;
    }
    log.record(Event::Information, "", heading);
    let Some(der) = certificate else {
        log.record(Event::Information, "", "No certificate");
        return;
    };
    let Ok((_, parsed)) = X509Certificate::from_der(der.as_ref()) else {
        log.record(Event::Information, "", "Certificate could not be parsed");
        return;
    };
    let names = dns_names(&parsed);
    log.record(Event::Information, &parsed.subject().to_string(), "Certificate subject");
    log.record(Event::Information, &parsed.issuer().to_string(), "Certificate issuer name");
    let serial = parsed.raw_serial_as_string().replace(':', "").to_ascii_uppercase();
    log.record(Event::Information, &serial, "Certificate serial number");
    log.record(Event::Information, &thumbprint(der.as_ref()), "Certificate thumbprint");
    log.record(Event::Information, &names.join(";"), "Certificate alternate names");
}
