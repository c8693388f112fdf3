//! The edge's certificate store and the certificate tasks it runs locally
//! (`New-`, `Import-`, `Enable-`, `Remove-ExchangeCertificate`). Private keys are
//! made here and never leave the data dir (mode 0600); the controller only ever
//! sees certificates, requests and their metadata.
//!
//! Layout under the data dir: `certificates/THUMB.pem` (chain, leaf first) and
//! `THUMB.toml` (friendly name, services), `keys/THUMB.key`, `pending/ID.key` and
//! `ID.toml` for requests waiting for their certificate, `tasks/ID.pb` for the
//! result of each task already run (a repeated task gets the same answer).

mod der_name;
mod generate;
mod inventory;
pub mod smtp;
pub mod verify;

use std::{
    fs,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use prost::Message;
use proto::edge::{self as pb, certificate_task::Action};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::store::{StoreError, write_atomic};

pub use crate::x509::{dns_names, thumbprint};

/// The certificate store in a data dir.
#[derive(Debug, Clone)]
pub struct CertificateStore {
    root: PathBuf,
    trusted_roots: Vec<Vec<u8>>,
}

/// A failed task; the text goes back to the operator.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
    /// Disk I/O.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Metadata kept beside each certificate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Metadata {
    friendly_name: String,
    services: Vec<String>,
}

/// A request waiting for its certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    subject: String,
    dns_names: Vec<String>,
    friendly_name: String,
    services: Vec<String>,
    request_pem: String,
}

impl CertificateStore {
    /// The store under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self { root: data_dir.to_owned(), trusted_roots: Vec::new() }
    }

    /// The data dir this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs a task once; a task already run answers with its stored result.
    pub fn execute(&self, task: &pb::CertificateTask) -> pb::CertificateResult {
        let stored = self.dir("tasks").join(format!("{}.pb", safe(&task.id)));
        if let Ok(bytes) = fs::read(&stored)
            && let Ok(mut result) = pb::CertificateResult::decode(bytes.as_slice())
        {
            result.certificates = self.inventory();
            return result;
        }
        let mut result = match self.run(task) {
            Ok(done) => done,
            Err(error) => pb::CertificateResult { error: error.to_string(), ..Default::default() },
        };
        result.id = task.id.clone();
        result.ok = result.error.is_empty();
        info!(task = %task.id, ok = result.ok, error = %result.error, "certificate task");
        if self.ensure_dirs().is_ok() {
            let _ = write_atomic(&stored, &result.encode_to_vec(), 0o600);
        }
        result.certificates = self.inventory();
        result
    }

    /// Every certificate and pending request, SMTP-enabled first, then newest.
    pub fn inventory(&self) -> Vec<pb::CertificateInfo> {
        inventory::list(self)
    }

    fn run(&self, task: &pb::CertificateTask) -> Result<pb::CertificateResult, TaskError> {
        self.ensure_dirs()?;
        match &task.action {
            Some(Action::NewCertificate(new)) if new.generate_request => generate::request(self, &task.id, new),
            Some(Action::NewCertificate(new)) => generate::self_signed(self, new),
            Some(Action::Enable(enable)) => self.enable(&enable.thumbprint, &enable.services),
            Some(Action::Remove(remove)) => self.remove(&remove.thumbprint),
            Some(Action::Import(import)) => generate::import(self, import),
            Some(Action::Verify(verify)) => self.verify(&verify.thumbprint),
            Some(Action::ImportPfx(import)) => generate::import_pfx(self, import),
            Some(Action::Queue(_) | Action::ProtocolLog(_) | Action::ExplainPolicy(_) | Action::PartnerTest(_)) => {
                Err(TaskError::Invalid("an operator command, not key work: the relay answers it".to_owned()))
            }
            None => Err(TaskError::Invalid("the task names no action".to_owned())),
        }
    }

    fn enable(&self, thumbprint: &str, services: &[String]) -> Result<pb::CertificateResult, TaskError> {
        let thumbprint = normalise(thumbprint);
        if !self.certificate_path(&thumbprint).exists() {
            return Err(no_certificate(&thumbprint));
        }
        if !self.key_path(&thumbprint).exists() {
            return Err(TaskError::Invalid(format!(
                "certificate {thumbprint} has no private key on this edge; it cannot serve SMTP"
            )));
        }
        let mut metadata = self.metadata(&thumbprint);
        for service in services {
            if !metadata.services.contains(service) {
                metadata.services.push(service.clone());
            }
        }
        self.store_metadata(&thumbprint, &metadata)?;
        Ok(pb::CertificateResult { thumbprint, ..Default::default() })
    }

    fn verify(&self, thumbprint: &str) -> Result<pb::CertificateResult, TaskError> {
        let thumbprint = normalise(thumbprint);
        let text = fs::read_to_string(self.certificate_path(&thumbprint)).map_err(|_| no_certificate(&thumbprint))?;
        let chain: Vec<Vec<u8>> = pem::parse_many(&text)
            .map_err(|e| TaskError::Invalid(e.to_string()))?
            .into_iter()
            .map(pem::Pem::into_contents)
            .collect();
        let verification = verify::verify(&chain, &self.trusted_roots);
        Ok(pb::CertificateResult {
            thumbprint,
            steps: verification.steps,
            verified: verification.verified,
            ..Default::default()
        })
    }

    /// The chain stored for a certificate (leaf first), DER.
    pub fn chain(&self, thumbprint: &str) -> Option<Vec<Vec<u8>>> {
        let text = fs::read_to_string(self.certificate_path(&normalise(thumbprint))).ok()?;
        let blocks = pem::parse_many(&text).ok()?;
        Some(blocks.into_iter().map(pem::Pem::into_contents).collect())
    }

    /// The organization's trusted roots (DER) from the current snapshot, for verify.
    pub fn set_trusted_roots(&mut self, roots: Vec<Vec<u8>>) {
        self.trusted_roots = roots;
    }

    fn remove(&self, thumbprint: &str) -> Result<pb::CertificateResult, TaskError> {
        if let Some(id) = thumbprint.strip_prefix("pending:") {
            let id = safe(id);
            if !self.dir("pending").join(format!("{id}.toml")).exists() {
                return Err(TaskError::Invalid(format!("no pending request {id} on this edge")));
            }
            let _ = fs::remove_file(self.dir("pending").join(format!("{id}.key")));
            let _ = fs::remove_file(self.dir("pending").join(format!("{id}.toml")));
            return Ok(pb::CertificateResult { thumbprint: thumbprint.to_owned(), ..Default::default() });
        }
        let thumbprint = normalise(thumbprint);
        if !self.certificate_path(&thumbprint).exists() {
            return Err(no_certificate(&thumbprint));
        }
        for path in [self.key_path(&thumbprint), self.certificate_path(&thumbprint), self.metadata_path(&thumbprint)] {
            let _ = fs::remove_file(path);
        }
        Ok(pb::CertificateResult { thumbprint, ..Default::default() })
    }

    fn ensure_dirs(&self) -> Result<(), StoreError> {
        for name in ["certificates", "keys", "pending", "tasks"] {
            let dir = self.dir(name);
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|source| StoreError::Io {
                action: "create directory",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn certificate_path(&self, thumbprint: &str) -> PathBuf {
        self.dir("certificates").join(format!("{thumbprint}.pem"))
    }

    fn metadata_path(&self, thumbprint: &str) -> PathBuf {
        self.dir("certificates").join(format!("{thumbprint}.toml"))
    }

    fn key_path(&self, thumbprint: &str) -> PathBuf {
        self.dir("keys").join(format!("{thumbprint}.key"))
    }

    fn metadata(&self, thumbprint: &str) -> Metadata {
        fs::read_to_string(self.metadata_path(thumbprint))
            .ok()
            .and_then(|text| toml::from_str(&text).ok())
            .unwrap_or_default()
    }

    fn store_metadata(&self, thumbprint: &str, metadata: &Metadata) -> Result<(), StoreError> {
        let text = toml::to_string(metadata).unwrap_or_default();
        write_atomic(&self.metadata_path(thumbprint), text.as_bytes(), 0o644)
    }
}

fn no_certificate(thumbprint: &str) -> TaskError {
    TaskError::Invalid(format!("no certificate with thumbprint {thumbprint} on this edge (dsctl cert get lists them)"))
}

/// Upper-case hex without spaces or colons, as Exchange prints thumbprints.
fn normalise(thumbprint: &str) -> String {
    thumbprint.chars().filter(char::is_ascii_hexdigit).collect::<String>().to_ascii_uppercase()
}

/// Task and request ids become file names: keep them to safe characters.
fn safe(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::{FromDer, X509Certificate, X509CertificationRequest};

    use super::*;

    fn task(id: &str, action: Action) -> pb::CertificateTask {
        pb::CertificateTask { id: id.to_owned(), action: Some(action) }
    }

    fn new(subject: &str, request: bool) -> Action {
        Action::NewCertificate(pb::NewCertificate {
            subject_name: subject.to_owned(),
            domain_names: vec!["mail.contoso.com".into(), "*.contoso.com".into()],
            friendly_name: "Internet certificate".into(),
            generate_request: request,
            ..Default::default()
        })
    }

    #[test]
    fn self_signed_certificates_carry_the_full_subject_and_a_valid_signature() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertificateStore::new(dir.path());
        let result = store.execute(&task("t1", new("DC=com,DC=Contoso,CN=mail1.contoso.com", false)));
        assert!(result.ok, "{}", result.error);
        let info = &result.certificates[0];
        assert_eq!(info.thumbprint, result.thumbprint);
        assert_eq!(info.key_status, "present");
        assert_eq!(info.dns_names, vec!["mail.contoso.com".to_owned(), "*.contoso.com".to_owned()]);
        let der = pem::parse(&info.certificate_pem).unwrap().into_contents();
        let (_, certificate) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(certificate.subject().to_string(), "DC=com, DC=Contoso, CN=mail1.contoso.com");
        assert_eq!(certificate.issuer().to_string(), "DC=com, DC=Contoso, CN=mail1.contoso.com");
        certificate.verify_signature(None).unwrap();
        let key_mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(store.key_path(&info.thumbprint)).unwrap().permissions(),
        );
        assert_eq!(key_mode & 0o777, 0o600);
    }

    #[test]
    fn a_repeated_task_answers_the_same_without_running_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertificateStore::new(dir.path());
        let first = store.execute(&task("t1", new("CN=mail1.contoso.com", false)));
        let again = store.execute(&task("t1", new("CN=mail1.contoso.com", false)));
        assert_eq!(first.thumbprint, again.thumbprint);
        assert_eq!(again.certificates.len(), 1, "one certificate, not two");
    }

    #[test]
    fn a_request_keeps_its_key_pending_until_the_issued_certificate_is_imported() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertificateStore::new(dir.path());
        let result = store.execute(&task("r1", new("C=US, O=contoso corp, CN=mail1.contoso.com", true)));
        assert!(result.ok, "{}", result.error);
        assert_eq!(result.certificates[0].key_status, "pending");
        let request_der = pem::parse(&result.request_pem).unwrap().into_contents();
        let (_, request) = X509CertificationRequest::from_der(&request_der).unwrap();
        assert_eq!(
            request.certification_request_info.subject.to_string(),
            "C=US, O=contoso corp, CN=mail1.contoso.com"
        );
        request.verify_signature().unwrap();

        // A test CA signs the request (as the paper's CA would).
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(vec![]).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let csr = rcgen::CertificateSigningRequestParams::from_der(&request_der.clone().into()).unwrap();
        let issued = csr.signed_by(&ca).unwrap();
        let chain = format!("{}{}", issued.pem(), ca.pem());

        // A certificate for another key is refused and changes nothing.
        let stranger = store.execute(&task(
            "i0",
            Action::Import(pb::ImportCertificate { data: ca.pem().into_bytes(), ..Default::default() }),
        ));
        assert!(!stranger.ok);
        assert!(stranger.error.contains("matches no pending request on this edge"), "{}", stranger.error);

        let imported = store.execute(&task(
            "i1",
            Action::Import(pb::ImportCertificate {
                data: chain.into_bytes(),
                services: vec!["smtp".into()],
                ..Default::default()
            }),
        ));
        assert!(imported.ok, "{}", imported.error);
        let info = &imported.certificates[0];
        assert_eq!(info.thumbprint, imported.thumbprint);
        assert_eq!(info.key_status, "present");
        assert_eq!(info.services, vec!["smtp".to_owned()]);
        assert_eq!(info.friendly_name, "Internet certificate");
        assert_eq!(imported.certificates.len(), 1, "the pending request is gone");
    }

    /// A certs-only PKCS#7 SignedData, the shape of a CA's .p7b file.
    fn p7b(certificates: &[Vec<u8>]) -> Vec<u8> {
        use yasna::{Tag, models::ObjectIdentifier};
        yasna::construct_der(|writer| {
            writer.write_sequence(|writer| {
                writer.next().write_oid(&ObjectIdentifier::from_slice(&[1, 2, 840, 113_549, 1, 7, 2]));
                writer.next().write_tagged(Tag::context(0), |writer| {
                    writer.write_sequence(|writer| {
                        writer.next().write_u8(1);
                        writer.next().write_set(|_| {});
                        writer.next().write_sequence(|writer| {
                            writer.next().write_oid(&ObjectIdentifier::from_slice(&[1, 2, 840, 113_549, 1, 7, 1]));
                        });
                        writer.next().write_tagged_implicit(Tag::context(0), |writer| {
                            writer.write_set(|writer| {
                                for certificate in certificates {
                                    writer.next().write_der(certificate);
                                }
                            });
                        });
                        writer.next().write_set(|_| {});
                    });
                });
            });
        })
    }

    #[test]
    fn an_issued_certificate_may_come_as_a_p7b_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertificateStore::new(dir.path());
        let result = store.execute(&task("r1", new("CN=mail1.contoso.com", true)));
        let request_der = pem::parse(&result.request_pem).unwrap().into_contents();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(vec![]).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let csr = rcgen::CertificateSigningRequestParams::from_der(&request_der.into()).unwrap();
        let issued = csr.signed_by(&ca).unwrap();
        let bundle = p7b(&[ca.der().to_vec(), issued.der().to_vec()]);
        let pem_bundle = pem::encode(&pem::Pem::new("PKCS7", bundle.clone()));
        let imported =
            store.execute(&task("i1", Action::Import(pb::ImportCertificate { data: bundle, ..Default::default() })));
        assert!(imported.ok, "{}", imported.error);
        assert_eq!(
            imported.thumbprint,
            thumbprint(issued.der()),
            "the leaf is the one matching the key, wherever it sits"
        );
        let chain = fs::read_to_string(store.certificate_path(&imported.thumbprint)).unwrap();
        assert_eq!(pem::parse_many(&chain).unwrap().len(), 2, "the chain is kept, leaf first");
        let again = store.execute(&task(
            "i2",
            Action::Import(pb::ImportCertificate { data: pem_bundle.into_bytes(), ..Default::default() }),
        ));
        assert!(again.error.contains("matches no pending request"), "PEM-wrapped PKCS#7 parses too: {}", again.error);
        let garbage = store.execute(&task(
            "i3",
            Action::Import(pb::ImportCertificate { data: vec![0x30, 0x03, 1, 2, 3], ..Default::default() }),
        ));
        assert!(garbage.error.contains("neither a PEM, a DER certificate nor a PKCS#7"), "{}", garbage.error);
    }

    /// Interop: the .p7b OpenSSL writes (`openssl crl2pkcs7 -nocrl`), where OpenSSL is installed.
    #[test]
    fn a_p7b_written_by_openssl_imports() {
        if std::process::Command::new("openssl").arg("version").output().is_err() {
            eprintln!("openssl not installed: skipping the interop check");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = CertificateStore::new(&dir.path().join("edge"));
        let result = store.execute(&task("r1", new("CN=mail1.contoso.com", true)));
        let request_der = pem::parse(&result.request_pem).unwrap().into_contents();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(vec![]).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let issued =
            rcgen::CertificateSigningRequestParams::from_der(&request_der.into()).unwrap().signed_by(&ca).unwrap();
        let chain = dir.path().join("chain.pem");
        fs::write(&chain, format!("{}{}", issued.pem(), ca.pem())).unwrap();
        let p7b = dir.path().join("chain.p7b");
        let status = std::process::Command::new("openssl")
            .args(["crl2pkcs7", "-nocrl", "-outform", "DER", "-certfile"])
            .arg(&chain)
            .arg("-out")
            .arg(&p7b)
            .status()
            .unwrap();
        assert!(status.success());
        let imported = store.execute(&task(
            "i1",
            Action::Import(pb::ImportCertificate { data: fs::read(&p7b).unwrap(), ..Default::default() }),
        ));
        assert!(imported.ok, "{}", imported.error);
        assert_eq!(imported.thumbprint, thumbprint(issued.der()));
    }

    #[test]
    fn enable_and_remove_name_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertificateStore::new(dir.path());
        let made = store.execute(&task("t1", new("CN=mail1.contoso.com", false)));
        let enabled = store.execute(&task(
            "e1",
            Action::Enable(pb::EnableCertificate {
                thumbprint: made.thumbprint.to_lowercase(),
                services: vec!["smtp".into()],
            }),
        ));
        assert!(enabled.ok, "{}", enabled.error);
        assert_eq!(enabled.certificates[0].services, vec!["smtp".to_owned()]);
        let missing = store.execute(&task(
            "e2",
            Action::Enable(pb::EnableCertificate { thumbprint: "ABCD".into(), services: vec![] }),
        ));
        assert!(missing.error.contains("no certificate with thumbprint ABCD"), "{}", missing.error);
        let removed =
            store.execute(&task("x1", Action::Remove(pb::RemoveCertificate { thumbprint: made.thumbprint.clone() })));
        assert!(removed.ok);
        assert!(removed.certificates.is_empty());
    }

    #[test]
    fn bad_subjects_and_names_are_refused_with_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertificateStore::new(dir.path());
        let result = store.execute(&task("t1", new("C=US o=contoso corp, CN=mail1.contoso.com", false)));
        assert!(result.error.contains("a comma is probably missing before \"o=\""), "{}", result.error);
        let result = store.execute(&task(
            "t2",
            Action::NewCertificate(pb::NewCertificate {
                subject_name: "CN=x".into(),
                domain_names: vec!["mail..contoso.com".into()],
                ..Default::default()
            }),
        ));
        assert_eq!(result.error, "domain_names[0] \"mail..contoso.com\": empty label");
        let result = store.execute(&task(
            "t3",
            Action::NewCertificate(pb::NewCertificate {
                subject_name: "CN=x".into(),
                key_algorithm: "dsa".into(),
                ..Default::default()
            }),
        ));
        assert!(result.error.contains("key algorithm \"dsa\""), "{}", result.error);
    }

    #[test]
    fn rsa_keys_for_partners_without_ecdsa() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertificateStore::new(dir.path());
        let result = store.execute(&task(
            "t1",
            Action::NewCertificate(pb::NewCertificate {
                subject_name: "DC=com,DC=Contoso,CN=mail1.contoso.com".into(),
                key_algorithm: "rsa2048".into(),
                ..Default::default()
            }),
        ));
        assert!(result.ok, "{}", result.error);
        let der = pem::parse(&result.certificates[0].certificate_pem).unwrap().into_contents();
        let (_, certificate) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(certificate.subject().to_string(), "DC=com, DC=Contoso, CN=mail1.contoso.com");
        certificate.verify_signature(None).unwrap();
        let request = store.execute(&task(
            "r1",
            Action::NewCertificate(pb::NewCertificate {
                subject_name: "CN=mail1.contoso.com".into(),
                key_algorithm: "rsa2048".into(),
                generate_request: true,
                ..Default::default()
            }),
        ));
        assert!(request.ok, "{}", request.error);
        let der = pem::parse(&request.request_pem).unwrap().into_contents();
        X509CertificationRequest::from_der(&der).unwrap().1.verify_signature().unwrap();
    }
}
