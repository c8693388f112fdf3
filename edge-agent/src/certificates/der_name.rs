//! Writing the subject name into certificates and requests.
//!
//! rcgen keeps one value per attribute type, so it cannot write the paper's own
//! example `DC=com, DC=Contoso, CN=mail1.contoso.com`. rcgen still builds the
//! certificate or request (extensions, key, validity); this module then puts the
//! full X.500 name (encoded with yasna) in place of rcgen's placeholder and signs
//! the result again with ring. See docs/decisions/0001-subject-names.md.

use domainsec_model::{RdnType, SubjectName};
use ring::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use x509_parser::prelude::{FromDer, X509Certificate, X509CertificationRequest};
use yasna::models::ObjectIdentifier;

/// The key that signs again after the name is in place (the same key rcgen used).
pub enum Signer {
    /// ECDSA P-256 or P-384.
    Ecdsa(EcdsaKeyPair),
    /// RSA with PKCS#1 v1.5 and SHA-256 (rcgen's `PKCS_RSA_SHA256`).
    Rsa(RsaKeyPair),
}

impl Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, NameError> {
        let rng = SystemRandom::new();
        match self {
            Self::Ecdsa(key) => key
                .sign(&rng, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| NameError("signing failed".to_owned())),
            Self::Rsa(key) => {
                let mut signature = vec![0u8; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| NameError("signing failed".to_owned()))?;
                Ok(signature)
            }
        }
    }
}

/// Why a name could not be written.
#[derive(Debug, thiserror::Error)]
#[error("write the subject name: {0}")]
pub struct NameError(pub String);

/// DER of an X.500 Name: one RDN per attribute, in the given order. C is a
/// PrintableString, DC an IA5String, the rest UTF8String.
pub fn encode(name: &SubjectName) -> Vec<u8> {
    yasna::construct_der(|writer| {
        writer.write_sequence_of(|writer| {
            for (kind, value) in &name.rdns {
                writer.next().write_set(|writer| {
                    writer.next().write_sequence(|writer| {
                        writer.next().write_oid(&ObjectIdentifier::from_slice(oid(*kind)));
                        match kind {
                            RdnType::C => writer.next().write_printable_string(&value.to_ascii_uppercase()),
                            RdnType::DC => writer.next().write_ia5_string(value),
                            _ => writer.next().write_utf8_string(value),
                        }
                    });
                });
            }
        });
    })
}

/// Puts `name` as subject (and as issuer, for a self-signed certificate) and re-signs.
pub fn rename_certificate(
    der: &[u8],
    name: &SubjectName,
    self_signed: bool,
    key: &Signer,
) -> Result<Vec<u8>, NameError> {
    let (_, certificate) = X509Certificate::from_der(der).map_err(|e| NameError(e.to_string()))?;
    let tbs = certificate.tbs_certificate.as_ref();
    let encoded = encode(name);
    let mut replacements = vec![(span(tbs, certificate.subject().as_raw())?, encoded.as_slice())];
    if self_signed {
        replacements.push((span(tbs, certificate.issuer().as_raw())?, encoded.as_slice()));
    }
    resign(der, tbs, replacements, key)
}

/// Puts `name` as the subject of a PKCS#10 request and re-signs.
pub fn rename_request(der: &[u8], name: &SubjectName, key: &Signer) -> Result<Vec<u8>, NameError> {
    let (_, request) = X509CertificationRequest::from_der(der).map_err(|e| NameError(e.to_string()))?;
    let info = request.certification_request_info.raw;
    let encoded = encode(name);
    let subject = span(info, request.certification_request_info.subject.as_raw())?;
    resign(der, info, vec![(subject, encoded.as_slice())], key)
}

/// Rebuilds `outer` = SEQUENCE { inner', algorithm, BIT STRING signature } where
/// inner' is `inner` with the replacements, signed with `key`.
fn resign(
    outer: &[u8],
    inner: &[u8],
    mut replacements: Vec<((usize, usize), &[u8])>,
    key: &Signer,
) -> Result<Vec<u8>, NameError> {
    let header = header_length(inner)?;
    let mut content = inner[header..].to_vec();
    replacements.sort_by_key(|((start, _), _)| std::cmp::Reverse(*start));
    for ((start, end), with) in replacements {
        let (start, end) = (start - header, end - header);
        content.splice(start..end, with.iter().copied());
    }
    let new_inner = sequence(&content);
    let outer_header = header_length(outer)?;
    let algorithm_start = outer_header + inner.len();
    let algorithm_length = header_length(&outer[algorithm_start..])? + content_length(&outer[algorithm_start..])?;
    let algorithm = &outer[algorithm_start..algorithm_start + algorithm_length];
    let signature = key.sign(&new_inner)?;
    let mut bit_string = vec![0u8];
    bit_string.extend_from_slice(&signature);
    let mut body = new_inner;
    body.extend_from_slice(algorithm);
    body.extend(tlv(0x03, &bit_string));
    Ok(sequence(&body))
}

/// The byte range of `part` inside `whole` (both slices of one buffer).
fn span(whole: &[u8], part: &[u8]) -> Result<(usize, usize), NameError> {
    let start = (part.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .filter(|start| start + part.len() <= whole.len())
        .ok_or_else(|| NameError("name is not inside the signed part".to_owned()))?;
    Ok((start, start + part.len()))
}

fn header_length(der: &[u8]) -> Result<usize, NameError> {
    match der.get(1) {
        Some(length) if *length < 0x80 => Ok(2),
        Some(length) => Ok(2 + usize::from(length & 0x7f)),
        None => Err(NameError("truncated DER".to_owned())),
    }
}

fn content_length(der: &[u8]) -> Result<usize, NameError> {
    let first = *der.get(1).ok_or_else(|| NameError("truncated DER".to_owned()))?;
    if first < 0x80 {
        return Ok(usize::from(first));
    }
    let count = usize::from(first & 0x7f);
    let bytes = der.get(2..2 + count).ok_or_else(|| NameError("truncated DER".to_owned()))?;
    Ok(bytes.iter().fold(0usize, |length, byte| (length << 8) | usize::from(*byte)))
}

fn sequence(content: &[u8]) -> Vec<u8> {
    tlv(0x30, content)
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = content.len();
    if length < 0x80 {
        out.push(u8::try_from(length).unwrap_or(0));
    } else {
        let bytes: Vec<u8> = length.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap_or(0));
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn oid(kind: RdnType) -> &'static [u64] {
    match kind {
        RdnType::C => &[2, 5, 4, 6],
        RdnType::DC => &[0, 9, 2342, 19_200_300, 100, 1, 25],
        RdnType::S => &[2, 5, 4, 8],
        RdnType::L => &[2, 5, 4, 7],
        RdnType::O => &[2, 5, 4, 10],
        RdnType::OU => &[2, 5, 4, 11],
        RdnType::CN => &[2, 5, 4, 3],
    }
}
