//! Certificates managed centrally, key work on the edge: dsctl's API → controller
//! → the edge's sync stream → the edge's store → the directory's mirror.

use controller::testing::TestController;
use domainsec_model::Role;
use proto::admin::{self as pb, admin_client::AdminClient};
use sqlx::PgPool;
use tonic::{Code, transport::Channel};

use crate::support::{TestEdge, eventually};

async fn finished(admin: &AdminClient<Channel>, id: &str) -> pb::CertificateTask {
    eventually("the certificate task to finish", || {
        let mut admin = admin.clone();
        let id = id.to_owned();
        async move {
            let task = admin.get_certificate_task(pb::GetCertificateTaskRequest { id }).await.unwrap().into_inner();
            (task.state != "queued").then_some(task)
        }
    })
    .await
}

/// The certificates the directory mirrors for one edge.
async fn certificates_of(admin: &AdminClient<Channel>, edge: &str) -> Vec<pb::EdgeCertificate> {
    admin
        .clone()
        .list_certificates(pb::ListCertificatesRequest { edge: edge.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .certificates
}

fn request(edge: &str, subject: &str) -> pb::NewCertificateRequest {
    pb::NewCertificateRequest {
        edge: edge.into(),
        subject_name: subject.into(),
        domain_names: vec!["mail.contoso.com".into()],
        friendly_name: "Internet certificate".into(),
        generate_request: true,
        services: vec!["smtp".into()],
        ..Default::default()
    }
}

struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "Test Third-Party CA");
        Self { issuer: rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap() }
    }

    /// Signs a PKCS#10 request; returns the certificate and the CA as a PEM chain.
    fn sign(&self, request_pem: &str) -> Vec<u8> {
        let der = pem::parse(request_pem).unwrap().into_contents();
        let csr = rcgen::CertificateSigningRequestParams::from_der(&der.into()).unwrap();
        let issued = csr.signed_by(&self.issuer).unwrap();
        format!("{}{}", issued.pem(), self.issuer.pem()).into_bytes()
    }
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn requests_for_two_edges_are_signed_imported_and_enabled(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let _mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let _mail2 = TestEdge::subscribe(&controller, "mail2").await;
    let ca = TestCa::new();

    let mut issued = Vec::new();
    for (edge, subject) in
        [("mail1", "DC=com,DC=Contoso,CN=mail1.contoso.com"), ("mail2", "DC=com,DC=Contoso,CN=mail2.mail.contoso.com")]
    {
        let queued = admin.new_certificate(request(edge, subject)).await.unwrap().into_inner();
        let task = finished(&admin, &queued.tasks[0].id).await;
        assert_eq!(task.state, "done", "{}", task.error);
        assert!(task.request_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        issued.push((edge, ca.sign(&task.request_pem)));
    }
    // The directory mirrors the pending requests.
    let pending = certificates_of(&admin, "mail1").await;
    assert_eq!(pending[0].key_status, "pending");
    assert_eq!(pending[0].subject, "DC=com, DC=Contoso, CN=mail1.contoso.com");

    // mail1's certificate matches no key on mail2.
    let wrong = admin
        .import_certificate(pb::ImportCertificateRequest {
            edges: vec!["mail2".into()],
            data: issued[0].1.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let wrong = finished(&admin, &wrong.tasks[0].id).await;
    assert_eq!(wrong.state, "failed");
    assert!(wrong.error.contains("matches no pending request on this edge"), "{}", wrong.error);

    for (edge, chain) in &issued {
        let queued = admin
            .import_certificate(pb::ImportCertificateRequest {
                edges: vec![(*edge).into()],
                data: chain.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let task = finished(&admin, &queued.tasks[0].id).await;
        assert_eq!(task.state, "done", "{}", task.error);
        let certificates = certificates_of(&admin, edge).await;
        assert_eq!(certificates.len(), 1, "the request became the certificate");
        let certificate = &certificates[0];
        assert_eq!(certificate.thumbprint, task.thumbprint);
        assert_eq!(certificate.key_status, "present");
        assert_eq!(certificate.services, vec!["smtp".to_owned()], "--enable smtp carried from the request");
        assert_eq!(certificate.issuer, "CN=Test Third-Party CA");
        assert_eq!(certificate.dns_names, vec!["mail.contoso.com".to_owned()]);
        assert!(certificate.certificate_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
    // Get-ExchangeCertificate -DomainName: both edges' certificates cover mail.contoso.com.
    let for_domain = admin
        .list_certificates(pb::ListCertificatesRequest { domain_name: "mail.contoso.com".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .certificates;
    assert_eq!(for_domain.len(), 2);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_task_for_an_offline_edge_runs_once_when_it_reconnects(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let dir = mail1.stop().await;
    let queued = admin
        .new_certificate(pb::NewCertificateRequest {
            edge: "mail1".into(),
            services: vec!["smtp".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let id = queued.tasks[0].id.clone();
    let task = admin.get_certificate_task(pb::GetCertificateTaskRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(task.state, "queued");

    let _mail1 = TestEdge::start(dir);
    let task = finished(&admin, &id).await;
    assert_eq!(task.state, "done", "{}", task.error);
    let certificates = certificates_of(&admin, "mail1").await;
    assert_eq!(certificates.len(), 1, "made once");
    assert_eq!(certificates[0].subject, "CN=mail1.contoso.com", "the default CN is the edge's FQDN");
    assert_eq!(certificates[0].services, vec!["smtp".to_owned()]);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn bad_certificate_requests_are_refused_at_the_api(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let _mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let status =
        admin.new_certificate(request("mail1", "C=US o=contoso corp, CN=mail1.contoso.com")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("a comma is probably missing before \"o=\""), "{}", status.message());
    let mut dsa = request("mail1", "CN=mail1.contoso.com");
    dsa.key_algorithm = "dsa1024".into();
    let status = admin.new_certificate(dsa).await.unwrap_err();
    assert_eq!(status.message(), "key_algorithm \"dsa1024\": expected ecdsa-p256, ecdsa-p384, rsa2048 or rsa3072");
    let mut warned = request("mail1", "C=US, DC=com, CN=a.contoso.com, CN=b.contoso.com");
    warned.generate_request = false;
    let response = admin.new_certificate(warned).await.unwrap().into_inner();
    assert_eq!(response.warnings.len(), 2, "{:?}", response.warnings);

    let key = rcgen::KeyPair::generate().unwrap();
    let status = admin
        .import_certificate(pb::ImportCertificateRequest {
            edges: vec!["mail1".into()],
            data: key.serialize_pem().into_bytes(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("private keys never travel"), "{}", status.message());
    let status = admin
        .enable_certificate(pb::EnableCertificateRequest {
            edge: "mail1".into(),
            thumbprint: "xyz".into(),
            services: vec!["smtp".into()],
        })
        .await
        .unwrap_err();
    assert!(status.message().starts_with("thumbprint \"xyz\": expected the 40 hex digits"), "{}", status.message());

    let viewer = controller.issue(Role::ViewOnly, "auditor", &[]).await;
    let mut viewer = controller.client(&viewer).await;
    let status = viewer.new_certificate(request("mail1", "CN=mail1.contoso.com")).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_clone_keeps_subject_and_names_with_a_new_key(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let _mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let mut original = request("mail1", "DC=com,DC=Contoso,CN=mail1.contoso.com");
    original.generate_request = false;
    original.domain_names = vec!["mail.contoso.com".into(), "*.contoso.com".into()];
    let made = admin.new_certificate(original).await.unwrap().into_inner();
    let made = finished(&admin, &made.tasks[0].id).await;
    let cloned = admin
        .clone_certificate(pb::CloneCertificateRequest {
            edge: "mail1".into(),
            thumbprint: made.thumbprint.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let cloned = finished(&admin, &cloned.tasks[0].id).await;
    assert_eq!(cloned.state, "done", "{}", cloned.error);
    let certificates = certificates_of(&admin, "mail1").await;
    let find = |thumbprint: &str| certificates.iter().find(|c| c.thumbprint == thumbprint).unwrap().clone();
    let (a, b) = (find(&made.thumbprint), find(&cloned.thumbprint));
    assert_ne!(a.thumbprint, b.thumbprint);
    assert_eq!(a.subject, b.subject);
    assert_eq!(b.subject, "DC=com, DC=Contoso, CN=mail1.contoso.com");
    assert_eq!(a.dns_names, b.dns_names);
    assert_eq!(a.friendly_name, b.friendly_name);
    let key = |pem_text: &str| {
        use x509_parser::prelude::FromDer;
        let der = pem::parse(pem_text).unwrap().into_contents();
        let (_, certificate) = x509_parser::prelude::X509Certificate::from_der(&der).unwrap();
        certificate.public_key().raw.to_vec()
    };
    assert_ne!(key(&a.certificate_pem), key(&b.certificate_pem), "a clone has a new key");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn verify_builds_the_chain_with_the_organizations_trusted_roots(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let mut mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let ca = TestCa::new();
    let queued = admin.new_certificate(request("mail1", "CN=mail1.contoso.com")).await.unwrap().into_inner();
    let task = finished(&admin, &queued.tasks[0].id).await;
    let chain = ca.sign(&task.request_pem);
    let queued = admin
        .import_certificate(pb::ImportCertificateRequest {
            edges: vec!["mail1".into()],
            data: chain,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let thumbprint = finished(&admin, &queued.tasks[0].id).await.thumbprint;
    let verify = |admin: &mut AdminClient<Channel>| {
        let mut admin = admin.clone();
        let thumbprint = thumbprint.clone();
        async move {
            let queued = admin
                .verify_certificate(pb::VerifyCertificateRequest { edge: "mail1".into(), thumbprint })
                .await
                .unwrap()
                .into_inner();
            finished(&admin, &queued.tasks[0].id).await
        }
    };
    // The test CA is nobody's root yet: the chain does not build.
    let report = verify(&mut admin).await;
    assert_eq!(report.state, "done", "{}", report.error);
    assert!(!report.verified);
    assert!(report.steps.iter().any(|s| s.starts_with("chain: FAILED: UnknownIssuer")), "{:?}", report.steps);
    assert!(report.steps.iter().any(|s| s.starts_with("revocation: not checked")), "{:?}", report.steps);

    // Direct root trust: add the CA as a trusted root, and the chain builds.
    let added = admin
        .add_trusted_root(pb::AddTrustedRootRequest { data: ca.issuer.pem().into_bytes(), edges: vec![] })
        .await
        .unwrap()
        .into_inner();
    mail1.wait_for_version(added.config_version).await;
    let report = verify(&mut admin).await;
    assert!(report.verified, "{:?}", report.steps);
    assert!(report.steps.iter().any(|s| s.contains("anchored at an organization trusted root")), "{:?}", report.steps);
    assert!(report.steps.iter().any(|s| s == "key usage: server authentication ok"), "{:?}", report.steps);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn trusted_roots_reach_the_edges_they_are_for(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let mut mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let mut mail2 = TestEdge::subscribe(&controller, "mail2").await;
    let ca = TestCa::new();
    let everywhere = admin
        .add_trusted_root(pb::AddTrustedRootRequest { data: ca.issuer.pem().into_bytes(), edges: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mail1.wait_for_version(everywhere.config_version).await.trusted_roots.len(), 1);
    assert_eq!(mail2.wait_for_version(everywhere.config_version).await.trusted_roots.len(), 1);

    let partner = TestCa::new();
    let only_mail2 = admin
        .add_trusted_root(pb::AddTrustedRootRequest {
            data: partner.issuer.pem().into_bytes(),
            edges: vec!["mail2".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mail1.wait_for_version(only_mail2.config_version).await.trusted_roots.len(), 1);
    assert_eq!(mail2.wait_for_version(only_mail2.config_version).await.trusted_roots.len(), 2);

    // A server's certificate is not a trust anchor.
    let leaf = rcgen::CertificateParams::new(vec!["mail.woodgrovebank.com".into()])
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let status = admin
        .add_trusted_root(pb::AddTrustedRootRequest { data: leaf.pem().into_bytes(), edges: vec![] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("not a CA certificate"), "{}", status.message());
    let status = admin
        .add_trusted_root(pb::AddTrustedRootRequest { data: ca.issuer.pem().into_bytes(), edges: vec![] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);

    let removed = admin
        .remove_trusted_root(pb::RemoveTrustedRootRequest { sha256: everywhere.sha256.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(mail1.wait_for_version(removed.config_version).await.trusted_roots.is_empty());
    let listed = admin.list_trusted_roots(pb::ListTrustedRootsRequest {}).await.unwrap().into_inner().roots;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].edges, vec!["mail2".to_owned()]);
}

fn pfx(ca: &TestCa, password: &str) -> (Vec<u8>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["mail.contoso.com".into()]).unwrap();
    let leaf = params.signed_by(&key, &ca.issuer).unwrap();
    let chain = p12_keystore::PrivateKeyChain::new(
        vec![1u8],
        p12_keystore::PrivateKey::from_der(&key.serialize_der()).unwrap(),
        [
            p12_keystore::Certificate::from_der(leaf.der()).unwrap(),
            p12_keystore::Certificate::from_der(ca.issuer.der()).unwrap(),
        ],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("mail", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let thumbprint = edge::certificates::thumbprint(leaf.der());
    (store.writer(password).write().unwrap(), thumbprint)
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn one_pfx_serves_two_edges_and_is_kept_only_sealed(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let _mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let _mail2 = TestEdge::subscribe(&controller, "mail2").await;
    let ca = TestCa::new();
    let (bundle, thumbprint) = pfx(&ca, "Pa55-word");

    let status = admin
        .import_pfx(pb::ImportPfxRequest {
            edges: vec!["mail1".into()],
            pfx: bundle.clone(),
            password: "wrong".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("pfx: cannot open the PFX"), "{}", status.message());
    let status = admin
        .import_pfx(pb::ImportPfxRequest {
            edges: vec!["mail1".into()],
            pfx: b"not a pfx".to_vec(),
            password: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let queued = admin
        .import_pfx(pb::ImportPfxRequest {
            edges: vec!["mail1".into(), "mail2".into()],
            pfx: bundle,
            password: "Pa55-word".into(),
            services: vec!["smtp".into()],
            friendly_name: "Shared certificate".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queued.tasks.len(), 2);
    for task in &queued.tasks {
        let done = finished(&admin, &task.id).await;
        assert_eq!(done.state, "done", "{}", done.error);
        assert_eq!(done.thumbprint, thumbprint);
    }
    for edge in ["mail1", "mail2"] {
        let certificates = certificates_of(&admin, edge).await;
        assert_eq!(certificates[0].thumbprint, thumbprint);
        assert_eq!(certificates[0].key_status, "present");
        assert_eq!(certificates[0].services, vec!["smtp".to_owned()]);
    }
    // Once every edge has it, the directory holds nothing of the PFX any more.
    let params: Vec<String> =
        sqlx::query_scalar("SELECT params::text FROM certificate_tasks WHERE kind = 'import-pfx'")
            .fetch_all(&controller.pool)
            .await
            .unwrap();
    assert_eq!(params, vec![r#"{"sealed": "erased"}"#.to_owned(); 2]);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_queued_pfx_is_stored_sealed(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    admin.create_edge(pb::CreateEdgeRequest { name: "mail9".into(), fqdn: "mail9.contoso.com".into() }).await.unwrap();
    let (bundle, _) = pfx(&TestCa::new(), "Pa55-word");
    admin
        .import_pfx(pb::ImportPfxRequest {
            edges: vec!["mail9".into()],
            pfx: bundle.clone(),
            password: "Pa55-word".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let text: String = sqlx::query_scalar("SELECT params::text FROM certificate_tasks WHERE kind = 'import-pfx'")
        .fetch_one(&controller.pool)
        .await
        .unwrap();
    assert!(text.starts_with(r#"{"sealed": ""#), "{text}");
    assert!(!text.contains("Pa55-word"), "no password in the clear");
    use base64::Engine as _;
    let plain = base64::engine::general_purpose::STANDARD.encode(&bundle);
    assert!(!text.contains(&plain[..40]), "no PFX bytes in the clear");
}
