//! Fuzzes the CRL decoding of `edge-agent/src/domain_security/revocation/fetch.rs`
//! (`decode`, which is private): bytes downloaded from a CRL distribution point
//! go to `x509_parser::parse_x509_crl` (for nextUpdate, to schedule refreshes),
//! then the same bytes to `webpki::OwnedCertRevocationList::from_der` (for the
//! revocation check itself). This target makes the same two calls, with the same
//! crate versions as the edge agent.
//!
//! INVARIANT, for every input:
//! - neither parser panics, and nothing `decode` reads afterwards panics: the
//!   issuer, lastUpdate, nextUpdate (as `SystemTime`, as `decode` converts it),
//!   every revoked entry's serial, date, reason and invalidity date, and the
//!   extensions;
//! - when both parsers accept the bytes, every serial number x509-parser lists as
//!   revoked is found revoked by rustls-webpki (the edge reads the CRL with one
//!   parser and enforces it with the other: they must agree on what is revoked).
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use webpki::{CertRevocationList, OwnedCertRevocationList};

fuzz_target!(|der: &[u8]| {
    let parsed = x509_parser::parse_x509_crl(der).ok().map(|(_, crl)| crl);
    let owned = OwnedCertRevocationList::from_der(der).ok();
    let Some(crl) = parsed else { return };
    let issuer = crl.issuer().to_string();
    let _ = (crl.version(), crl.last_update().to_datetime(), crl.crl_number(), issuer.len());
    let next_update = crl.next_update().map(|time| SystemTime::from(time.to_datetime()));
    for extension in crl.extensions() {
        let _ = (extension.oid.to_id_string(), extension.critical, extension.parsed_extension());
    }
    let mut serials = Vec::new();
    for revoked in crl.iter_revoked_certificates() {
        let _ = (revoked.serial(), revoked.raw_serial_as_string(), revoked.revocation_date.to_datetime());
        let _ = (revoked.reason_code(), revoked.invalidity_date(), revoked.extensions_map());
        serials.push(revoked.raw_serial());
    }
    let Some(owned) = owned else { return };
    let list = CertRevocationList::from(owned);
    let _ = (list.issuer(), list.issuing_distribution_point(), next_update);
    for serial in serials {
        let found = list.find_serial(serial);
        assert!(
            matches!(found, Ok(Some(_))),
            "x509-parser lists serial {serial:02x?} as revoked, rustls-webpki finds {found:?} (issuer {issuer})"
        );
    }
});
