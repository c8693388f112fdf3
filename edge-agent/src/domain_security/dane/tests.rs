//! DANE matching against certificates made here: every usage, selector and matching
//! type, and each way a record can fail to authenticate.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::*;

const HOST: &str = "mx1.example.net";
const DOMAIN: &str = "example.net";

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    leaf: Vec<u8>,
    leaf_key: KeyPair,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(vec![]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf_for(ca: &CertifiedIssuer<'static, KeyPair>, name: &str, expired: bool, key: &KeyPair) -> Vec<u8> {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if expired {
        params.not_before = OffsetDateTime::now_utc() - Duration::days(60);
        params.not_after = OffsetDateTime::now_utc() - Duration::days(1);
    }
    params.signed_by(key, ca).unwrap().der().to_vec()
}

fn pki(name: &str) -> Pki {
    let ca = ca("Example Net CA");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_for(&ca, name, false, &leaf_key);
    Pki { ca, leaf, leaf_key }
}

fn chain(pki: &Pki) -> Vec<Vec<u8>> {
    vec![pki.leaf.clone(), pki.ca.der().to_vec()]
}

fn spki(der: &[u8]) -> Vec<u8> {
    let (_, parsed) = X509Certificate::from_der(der).unwrap();
    parsed.tbs_certificate.subject_pki.raw.to_vec()
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().to_vec()
}

fn sha512(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA512, bytes).as_ref().to_vec()
}

fn tlsa(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
    Tlsa { usage, selector, matching, data }
}

#[test]
fn dane_ee_matches_the_leaf_by_every_selector_and_matching_type() {
    let pki = pki(HOST);
    let chain = chain(&pki);
    let records = [
        tlsa(3, 1, 1, sha256(&spki(&pki.leaf))),
        tlsa(3, 0, 1, sha256(&pki.leaf)),
        tlsa(3, 1, 2, sha512(&spki(&pki.leaf))),
        tlsa(3, 0, 0, pki.leaf.clone()),
        tlsa(3, 1, 0, spki(&pki.leaf)),
    ];
    for record in records {
        let matched = verify(&chain, std::slice::from_ref(&record), HOST, DOMAIN).unwrap();
        assert_eq!(matched.depth, 0, "{record}");
    }
}

#[test]
fn dane_ee_checks_neither_name_nor_dates_nor_chain() {
    let ca = ca("Nobody's CA");
    let key = KeyPair::generate().unwrap();
    let expired_elsewhere = leaf_for(&ca, "unrelated.example.org", true, &key);
    let record = tlsa(3, 1, 1, sha256(&spki(&expired_elsewhere)));
    assert!(verify(&[expired_elsewhere], &[record], HOST, DOMAIN).is_ok(), "RFC 7672 §3.1.1");
}

#[test]
fn dane_ee_of_another_key_does_not_match() {
    let pki = pki(HOST);
    let other = KeyPair::generate().unwrap();
    let reissued_elsewhere = leaf_for(&pki.ca, HOST, false, &other);
    let record = tlsa(3, 1, 1, sha256(&spki(&reissued_elsewhere)));
    assert_eq!(verify(&chain(&pki), &[record], HOST, DOMAIN), Err(DaneFailure::NoMatch));
}

#[test]
fn dane_ee_survives_a_reissue_with_the_same_key_under_selector_1_only() {
    let pki = pki(HOST);
    let reissued = leaf_for(&pki.ca, HOST, false, &pki.leaf_key);
    let by_key = tlsa(3, 1, 1, sha256(&spki(&pki.leaf)));
    let by_certificate = tlsa(3, 0, 1, sha256(&pki.leaf));
    let chain = vec![reissued, pki.ca.der().to_vec()];
    assert!(verify(&chain, &[by_key], HOST, DOMAIN).is_ok());
    assert_eq!(verify(&chain, &[by_certificate], HOST, DOMAIN), Err(DaneFailure::NoMatch));
}

#[test]
fn dane_ta_anchors_a_path_with_a_name_check() {
    let pki = pki(HOST);
    let ca = pki.ca.der().to_vec();
    for record in [tlsa(2, 0, 1, sha256(&ca)), tlsa(2, 1, 1, sha256(&spki(&ca))), tlsa(2, 0, 2, sha512(&ca))] {
        assert_eq!(verify(&chain(&pki), std::slice::from_ref(&record), HOST, DOMAIN).unwrap().depth, 1, "{record}");
    }
    // The recipient domain is a reference identifier too (RFC 7672 §3.2.2).
    let for_domain = pki_with_ca(&pki.ca, DOMAIN);
    assert!(verify(&for_domain, &[tlsa(2, 0, 1, sha256(&ca))], HOST, DOMAIN).is_ok());
}

fn pki_with_ca(ca: &CertifiedIssuer<'static, KeyPair>, name: &str) -> Vec<Vec<u8>> {
    vec![leaf_for(ca, name, false, &KeyPair::generate().unwrap()), ca.der().to_vec()]
}

#[test]
fn dane_ta_refuses_a_wrong_name_an_expired_leaf_and_a_missing_anchor() {
    let pki = pki(HOST);
    let ca_der = pki.ca.der().to_vec();
    let record = tlsa(2, 0, 1, sha256(&ca_der));

    let wrong_name = pki_with_ca(&pki.ca, "mx.attacker.example");
    let error = verify(&wrong_name, std::slice::from_ref(&record), HOST, DOMAIN).unwrap_err();
    assert!(matches!(error, DaneFailure::NameMismatch { .. }), "{error:?}");

    let expired = vec![leaf_for(&pki.ca, HOST, true, &KeyPair::generate().unwrap()), ca_der.clone()];
    let error = verify(&expired, std::slice::from_ref(&record), HOST, DOMAIN).unwrap_err();
    assert!(matches!(error, DaneFailure::Chain(ref e) if e.contains("Expired")), "{error:?}");

    // The server did not send the anchor: nothing to anchor the path to.
    assert_eq!(
        verify(std::slice::from_ref(&pki.leaf), std::slice::from_ref(&record), HOST, DOMAIN),
        Err(DaneFailure::NoMatch)
    );

    // A leaf from another CA, sent with the listed CA appended: the path does not hold.
    let stranger = ca("Stranger CA");
    let forged = vec![leaf_for(&stranger, HOST, false, &KeyPair::generate().unwrap()), ca_der];
    let error = verify(&forged, &[record], HOST, DOMAIN).unwrap_err();
    assert!(matches!(error, DaneFailure::Chain(_)), "{error:?}");
}

#[test]
fn a_dane_ta_record_never_matches_the_leaf_itself() {
    let pki = pki(HOST);
    let record = tlsa(2, 0, 1, sha256(&pki.leaf));
    assert_eq!(verify(&chain(&pki), &[record], HOST, DOMAIN), Err(DaneFailure::NoMatch));
}

#[test]
fn pkix_usages_unknown_types_and_bad_lengths_are_unusable() {
    let digest = vec![0u8; 32];
    let unusable = [
        tlsa(0, 0, 1, digest.clone()),
        tlsa(1, 1, 1, digest.clone()),
        tlsa(4, 1, 1, digest.clone()),
        tlsa(3, 2, 1, digest.clone()),
        tlsa(3, 1, 3, digest.clone()),
        tlsa(3, 1, 1, vec![0u8; 31]),
        tlsa(3, 1, 2, digest.clone()),
        tlsa(3, 1, 0, vec![]),
    ];
    for record in &unusable {
        assert!(!record.is_usable(), "{record}");
    }
    assert_eq!(DaneRequirement::from_records(unusable.to_vec()), DaneRequirement::EncryptOnly);
    let usable = tlsa(3, 1, 1, digest);
    let mixed = DaneRequirement::from_records(vec![tlsa(1, 1, 1, vec![0; 32]), usable.clone()]);
    assert_eq!(mixed, DaneRequirement::Authenticate(vec![usable]));
}

#[test]
fn an_empty_chain_or_garbage_certificate_fails_without_panicking() {
    let record = tlsa(3, 1, 1, vec![0u8; 32]);
    assert_eq!(verify(&[], std::slice::from_ref(&record), HOST, DOMAIN), Err(DaneFailure::NoCertificate));
    assert_eq!(verify(&[b"not a certificate".to_vec()], &[record], HOST, DOMAIN), Err(DaneFailure::NoMatch));
    let ta = tlsa(2, 0, 0, b"junk".to_vec());
    assert!(verify(&[b"junk".to_vec(), b"junk".to_vec()], &[ta], HOST, DOMAIN).is_err());
}
