//! Making keys, self-signed certificates and PKCS#10 requests, and binding an
//! issued certificate to the pending key it was requested with.

use std::fs;

use domainsec_model::{DomainPattern, SubjectName};
use proto::edge as pb;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
    SignatureAlgorithm,
};
use ring::{rand::SystemRandom, signature::EcdsaKeyPair};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{
    CertificateStore, Metadata, Pending, TaskError,
    der_name::{self, Signer},
    safe, thumbprint,
};
use crate::store::write_atomic;

/// A self-signed certificate, valid 12 months, key made here.
pub fn self_signed(store: &CertificateStore, new: &pb::NewCertificate) -> Result<pb::CertificateResult, TaskError> {
    let (subject, names) = parse_names(new)?;
    let (key, ring_key) = make_key(&new.key_algorithm)?;
    let params = params(&names, true)?;
    let certificate = params.self_signed(&key).map_err(invalid)?;
    let der = der_name::rename_certificate(certificate.der(), &subject, true, &ring_key).map_err(invalid)?;
    let thumbprint = thumbprint(&der);
    write_atomic(&store.key_path(&thumbprint), key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(
        &store.certificate_path(&thumbprint),
        pem::encode(&pem::Pem::new("CERTIFICATE", der)).as_bytes(),
        0o644,
    )?;
    store.store_metadata(
        &thumbprint,
        &Metadata { friendly_name: new.friendly_name.clone(), services: new.services.clone() },
    )?;
    Ok(pb::CertificateResult { thumbprint, ..Default::default() })
}

/// A PKCS#10 request; the key stays here, pending, until the certificate is imported.
pub fn request(
    store: &CertificateStore,
    id: &str,
    new: &pb::NewCertificate,
) -> Result<pb::CertificateResult, TaskError> {
    let (subject, names) = parse_names(new)?;
    let (key, ring_key) = make_key(&new.key_algorithm)?;
    let params = params(&names, false)?;
    let request = params.serialize_request(&key).map_err(invalid)?;
    let der = der_name::rename_request(request.der(), &subject, &ring_key).map_err(invalid)?;
    let request_pem = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
    let id = safe(id);
    write_atomic(&store.dir("pending").join(format!("{id}.key")), key.serialize_pem().as_bytes(), 0o600)?;
    let pending = Pending {
        subject: subject.to_string(),
        dns_names: names.iter().map(ToString::to_string).collect(),
        friendly_name: new.friendly_name.clone(),
        services: new.services.clone(),
        request_pem: request_pem.clone(),
    };
    let text = toml::to_string(&pending).map_err(|e| TaskError::Invalid(e.to_string()))?;
    write_atomic(&store.dir("pending").join(format!("{id}.toml")), text.as_bytes(), 0o600)?;
    Ok(pb::CertificateResult { request_pem, thumbprint: format!("pending:{id}"), ..Default::default() })
}

/// Binds an issued certificate (PEM chain or DER) to the pending key it matches.
pub fn import(store: &CertificateStore, import: &pb::ImportCertificate) -> Result<pb::CertificateResult, TaskError> {
    let chain = certificates(&import.data)?;
    for entry in fs::read_dir(store.dir("pending")).map_err(|e| TaskError::Invalid(e.to_string()))?.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("key") {
            continue;
        }
        let Ok(key_pem) = fs::read_to_string(&path) else { continue };
        let Ok(key) = KeyPair::from_pem(&key_pem) else { continue };
        let public = rcgen::PublicKeyData::subject_public_key_info(&key);
        let Some(position) = chain
            .iter()
            .position(|der| X509Certificate::from_der(der).is_ok_and(|(_, c)| c.public_key().raw == public.as_slice()))
        else {
            continue;
        };
        let mut ordered = vec![chain[position].clone()];
        ordered.extend(chain.iter().enumerate().filter(|(i, _)| *i != position).map(|(_, c)| c.clone()));
        let thumbprint = thumbprint(&ordered[0]);
        let pending_meta = path.with_extension("toml");
        let pending: Option<Pending> = fs::read_to_string(&pending_meta).ok().and_then(|t| toml::from_str(&t).ok());
        let pem_chain: String =
            ordered.iter().map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()))).collect();
        write_atomic(&store.certificate_path(&thumbprint), pem_chain.as_bytes(), 0o644)?;
        write_atomic(&store.key_path(&thumbprint), key_pem.as_bytes(), 0o600)?;
        let mut services = pending.as_ref().map(|p| p.services.clone()).unwrap_or_default();
        services.extend(import.services.iter().filter(|s| !services.contains(s)).cloned().collect::<Vec<_>>());
        let friendly_name = match (&import.friendly_name, &pending) {
            (name, _) if !name.is_empty() => name.clone(),
            (_, Some(pending)) => pending.friendly_name.clone(),
            _ => String::new(),
        };
        store.store_metadata(&thumbprint, &Metadata { friendly_name, services })?;
        let _ = fs::remove_file(&path);
        let _ = fs::remove_file(&pending_meta);
        return Ok(pb::CertificateResult { thumbprint, ..Default::default() });
    }
    let leaf = chain.first().map(|der| thumbprint(der)).unwrap_or_default();
    Err(TaskError::Invalid(format!(
        "certificate {leaf} matches no pending request on this edge; import it on the edge that made the request, \
         or create one with dsctl cert new --generate-request"
    )))
}

fn parse_names(new: &pb::NewCertificate) -> Result<(SubjectName, Vec<DomainPattern>), TaskError> {
    let subject =
        SubjectName::parse(&new.subject_name).map_err(|e| TaskError::Invalid(format!("subject name: {e}")))?;
    let mut names = Vec::new();
    for (index, name) in new.domain_names.iter().enumerate() {
        let pattern = DomainPattern::parse(name)
            .map_err(|e| TaskError::Invalid(format!("domain_names[{index}] {name:?}: {e}")))?;
        if !names.contains(&pattern) {
            names.push(pattern);
        }
    }
    Ok((subject, names))
}

fn params(names: &[DomainPattern], self_signed: bool) -> Result<CertificateParams, TaskError> {
    let mut params = CertificateParams::default();
    // A placeholder: der_name writes the full subject afterwards.
    let mut placeholder = DistinguishedName::new();
    placeholder.push(DnType::CommonName, "placeholder");
    params.distinguished_name = placeholder;
    params.subject_alt_names = names
        .iter()
        .map(|name| name.to_string().try_into().map(SanType::DnsName).map_err(invalid))
        .collect::<Result<_, _>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    if self_signed {
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(365);
    }
    Ok(params)
}

fn make_key(algorithm: &str) -> Result<(KeyPair, Signer), TaskError> {
    let rng = SystemRandom::new();
    let ecdsa = |rcgen_alg: &'static SignatureAlgorithm, ring_alg| -> Result<(KeyPair, Signer), TaskError> {
        let key = KeyPair::generate_for(rcgen_alg).map_err(invalid)?;
        let signer = EcdsaKeyPair::from_pkcs8(ring_alg, &key.serialize_der(), &rng).map_err(invalid)?;
        Ok((key, Signer::Ecdsa(signer)))
    };
    match algorithm {
        "" | "ecdsa-p256" => ecdsa(&rcgen::PKCS_ECDSA_P256_SHA256, &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        "ecdsa-p384" => ecdsa(&rcgen::PKCS_ECDSA_P384_SHA384, &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        "rsa2048" => rsa_key(2048),
        "rsa3072" => rsa_key(3072),
        other => Err(TaskError::Invalid(format!(
            "key algorithm {other:?} is not one of ecdsa-p256, ecdsa-p384, rsa2048, rsa3072"
        ))),
    }
}

/// RSA for partners whose software cannot use ECDSA. ring cannot generate RSA
/// keys, so the `rsa` crate makes the key and ring signs with it.
fn rsa_key(bits: usize) -> Result<(KeyPair, Signer), TaskError> {
    use rsa::pkcs8::EncodePrivateKey as _;
    // The operating system's CSPRNG, fallible: a failure to read it is a failed task.
    let private = rsa::PrivateKey::new(&mut getrandom::SysRng, bits).map_err(invalid)?;
    let pkcs8 = private.to_pkcs8_der().map_err(invalid)?;
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
    let key = KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).map_err(invalid)?;
    let signer = ring::signature::RsaKeyPair::from_pkcs8(pkcs8.as_bytes()).map_err(invalid)?;
    Ok((key, Signer::Rsa(signer)))
}

/// DER certificates from PEM (CERTIFICATE or PKCS7 blocks), a PKCS#7 (.p7b)
/// certificate bag, or a single DER certificate.
fn certificates(data: &[u8]) -> Result<Vec<Vec<u8>>, TaskError> {
    if let Ok(blocks) = pem::parse_many(data)
        && !blocks.is_empty()
    {
        let mut certificates = Vec::new();
        for block in blocks {
            match block.tag() {
                "CERTIFICATE" => certificates.push(block.into_contents()),
                "PKCS7" => certificates.extend(pkcs7_certificates(block.contents())?),
                _ => {}
            }
        }
        if certificates.is_empty() {
            return Err(TaskError::Invalid("the file holds no CERTIFICATE block".to_owned()));
        }
        for der in &certificates {
            X509Certificate::from_der(der).map_err(|e| TaskError::Invalid(format!("not a certificate: {e}")))?;
        }
        return Ok(certificates);
    }
    if X509Certificate::from_der(data).is_ok() {
        return Ok(vec![data.to_vec()]);
    }
    pkcs7_certificates(data).map_err(|error| {
        TaskError::Invalid(format!("the file is neither a PEM, a DER certificate nor a PKCS#7 (.p7b) chain ({error})"))
    })
}

/// The certificates of a PKCS#7 SignedData (RFC 5652), as CAs hand out chains in .p7b files.
fn pkcs7_certificates(der: &[u8]) -> Result<Vec<Vec<u8>>, TaskError> {
    use yasna::{Tag, models::ObjectIdentifier};
    const SIGNED_DATA: &[u64] = &[1, 2, 840, 113_549, 1, 7, 2];
    let certificates = yasna::parse_ber(der, |reader| {
        reader.read_sequence(|reader| {
            let content_type = reader.next().read_oid()?;
            if content_type != ObjectIdentifier::from_slice(SIGNED_DATA) {
                return Err(yasna::ASN1Error::new(yasna::ASN1ErrorKind::Invalid));
            }
            reader.next().read_tagged(Tag::context(0), |reader| {
                reader.read_sequence(|reader| {
                    let _version = reader.next().read_der()?;
                    let _digest_algorithms = reader.next().read_der()?;
                    let _content = reader.next().read_der()?;
                    let certificates = reader.read_optional(|reader| {
                        reader.read_tagged_implicit(Tag::context(0), |reader| reader.collect_set_of(|r| r.read_der()))
                    })?;
                    // CRLs ([1], optional) and signer infos: not needed for a chain.
                    while reader.read_optional(|r| r.read_der())?.is_some() {}
                    Ok(certificates.unwrap_or_default())
                })
            })
        })
    })
    .map_err(|e| TaskError::Invalid(format!("not a PKCS#7 certificate chain: {e}")))?;
    if certificates.is_empty() {
        return Err(TaskError::Invalid("the PKCS#7 file holds no certificate".to_owned()));
    }
    for certificate in &certificates {
        X509Certificate::from_der(certificate).map_err(|e| TaskError::Invalid(format!("not a certificate: {e}")))?;
    }
    Ok(certificates)
}

fn invalid(error: impl std::fmt::Display) -> TaskError {
    TaskError::Invalid(error.to_string())
}

/// A PFX (certificate, chain and key) from the controller: the key is stored
/// here (0600) and never handed out again.
pub fn import_pfx(store: &CertificateStore, import: &pb::ImportPfx) -> Result<pb::CertificateResult, TaskError> {
    let keystore =
        p12_keystore::KeyStore::from_pkcs12(&import.pfx, &import.password, p12_keystore::Pkcs12ImportPolicy::Strict)
            .map_err(|e| TaskError::Invalid(format!("cannot open the PFX: {e}")))?;
    let (_, chain) = keystore
        .private_key_chain()
        .ok_or_else(|| TaskError::Invalid("the PFX holds no private key with its certificate".to_owned()))?;
    let certificates: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
    let Some(leaf) = certificates.first() else {
        return Err(TaskError::Invalid("the PFX holds a key without a certificate".to_owned()));
    };
    let key_der = chain.key().as_der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.clone().into());
    rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| TaskError::Invalid(format!("the PFX's key cannot be used for TLS on this edge: {e}")))?;
    let thumbprint = thumbprint(leaf);
    let chain_pem: String =
        certificates.iter().map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()))).collect();
    write_atomic(&store.key_path(&thumbprint), pem::encode(&pem::Pem::new("PRIVATE KEY", key_der)).as_bytes(), 0o600)?;
    write_atomic(&store.certificate_path(&thumbprint), chain_pem.as_bytes(), 0o644)?;
    store.store_metadata(
        &thumbprint,
        &Metadata { friendly_name: import.friendly_name.clone(), services: import.services.clone() },
    )?;
    Ok(pb::CertificateResult { thumbprint, ..Default::default() })
}
