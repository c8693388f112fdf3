//! Publishing the organization's own records: TLSA for the edges' keys (and the
//! warning when a certificate to enable matches none printed), the MTA-STS policy
//! stored and served over HTTPS, TLS-RPT; every refusal names the field.

use std::{sync::Arc, time::Duration};

use controller::testing::TestController;
use domainsec_model::Role;
use proto::{admin as pb, edge as edge_pb};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::support::{add_edges, assert_refused, assert_status, inet_connector, strings};

/// A certificate as an edge would report it, with its key (made here).
struct TestCertificate {
    info: edge_pb::CertificateInfo,
    der: Vec<u8>,
}

/// Makes a self-signed certificate valid from `days_ago` days back for a year.
fn certificate(name: &str, thumbprint: &str, days_ago: i64, smtp: bool) -> TestCertificate {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(days_ago);
    params.not_after = now + time::Duration::days(365 - days_ago);
    let certificate = params.self_signed(&key).unwrap();
    let rfc3339 = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    TestCertificate {
        der: certificate.der().to_vec(),
        info: edge_pb::CertificateInfo {
            thumbprint: thumbprint.to_owned(),
            sha256: "00".repeat(32),
            subject: format!("CN={name}"),
            issuer: format!("CN={name}"),
            serial: "01".to_owned(),
            dns_names: vec![name.to_owned()],
            not_before: rfc3339(params.not_before),
            not_after: rfc3339(params.not_after),
            services: if smtp { vec!["smtp".to_owned()] } else { vec![] },
            key_status: "present".to_owned(),
            friendly_name: String::new(),
            certificate_pem: certificate.pem(),
        },
    }
}

/// The SHA-256 of the certificate's SubjectPublicKeyInfo, computed here.
fn spki_sha256(der: &[u8]) -> String {
    let (_, parsed) = X509Certificate::from_der(der).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, parsed.tbs_certificate.subject_pki.raw);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Stands in for an edge's inventory report.
async fn report(controller: &TestController, edge: &str, certificates: &[&TestCertificate]) {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM edges WHERE name = $1")
        .bind(edge)
        .fetch_one(&controller.pool)
        .await
        .unwrap();
    let infos: Vec<_> = certificates.iter().map(|c| c.info.clone()).collect();
    controller::db::certificates::replace_inventory(&controller.pool, id, &infos).await.unwrap();
}

fn tlsa_request(edge: &str, port: u32) -> pb::PublishTlsaRequest {
    pb::PublishTlsaRequest { edge: edge.to_owned(), port }
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn publish_tlsa_prints_the_smtp_certificates_key_and_the_next_one(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    add_edges(&mut admin, &["mail1", "mail2"]).await;
    let mut inet = inet_connector("mail1");
    inet.fqdn = "mx.contoso.com".to_owned();
    admin.create_receive_connector(inet).await.unwrap();
    let mut internal = inet_connector("mail1");
    internal.name = "Internal".to_owned();
    internal.fqdn = "relay.corp.contoso.com".to_owned();
    internal.bindings = strings(&["0.0.0.0:587"]);
    internal.remote_ip_ranges = strings(&["10.0.0.0/8"]);
    admin.create_receive_connector(internal).await.unwrap();
    let current = certificate("mail1.contoso.com", "A".repeat(40).as_str(), 30, true);
    let next = certificate("mail1.contoso.com", "B".repeat(40).as_str(), 1, false);
    let older = certificate("mail1.contoso.com", "C".repeat(40).as_str(), 60, false);
    report(&controller, "mail1", &[&current, &next, &older]).await;
    let (current_hash, next_hash) = (spki_sha256(&current.der), spki_sha256(&next.der));

    // Any role may print them: the view-only auditor does.
    let viewer = controller.issue(Role::ViewOnly, "auditor", &[]).await;
    let mut viewer = controller.client(&viewer).await;
    let answer = viewer.publish_tlsa(tlsa_request("", 0)).await.unwrap().into_inner();
    let lines: Vec<(&str, bool)> = answer.records.iter().map(|r| (r.line.as_str(), r.next)).collect();
    assert_eq!(
        lines,
        [
            (format!("_25._tcp.mail1.contoso.com. IN TLSA 3 1 1 {current_hash}").as_str(), false),
            (format!("_25._tcp.mx.contoso.com. IN TLSA 3 1 1 {current_hash}").as_str(), false),
            (format!("_25._tcp.mail1.contoso.com. IN TLSA 3 1 1 {next_hash}").as_str(), true),
            (format!("_25._tcp.mx.contoso.com. IN TLSA 3 1 1 {next_hash}").as_str(), true),
        ],
        "the internal connector's name is no MX host; the older certificate is not the next one"
    );
    assert_eq!(answer.records[0].thumbprint, "A".repeat(40));
    assert_eq!(answer.records[2].thumbprint, "B".repeat(40));
    assert_eq!(answer.records[0].edge, "mail1");
    assert_eq!(
        answer.notes,
        ["edge mail2: no certificate enabled for SMTP (dsctl cert enable --edge mail2 --thumbprint T)"]
    );
    let printed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM published_tlsa").fetch_one(&controller.pool).await.unwrap();
    assert_eq!(printed, 4, "the controller remembers what it printed");

    // One edge, another port; printing again adds no duplicates.
    let answer = admin.publish_tlsa(tlsa_request("mail1", 2525)).await.unwrap().into_inner();
    assert_eq!(answer.records[0].owner, "_2525._tcp.mail1.contoso.com.");
    assert!(answer.notes.is_empty(), "{:?}", answer.notes);
    admin.publish_tlsa(tlsa_request("mail1", 0)).await.unwrap();
    let printed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM published_tlsa").fetch_one(&controller.pool).await.unwrap();
    assert_eq!(printed, 8);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn publish_tlsa_refusals_name_the_field(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    add_edges(&mut admin, &["mail1"]).await;
    assert_status(
        admin.publish_tlsa(tlsa_request("mail9", 0)).await,
        Code::InvalidArgument,
        "edge \"mail9\": no such edge; `dsctl edge list` shows the edges",
    );
    assert_status(
        admin.publish_tlsa(tlsa_request("mail1", 70_000)).await,
        Code::InvalidArgument,
        "port \"70000\": must be a port from 1 to 65535",
    );
    assert_refused(admin.publish_tlsa(tlsa_request("mail 1", 0)).await, Code::InvalidArgument, "edge \"mail 1\"");
    let printed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM published_tlsa").fetch_one(&controller.pool).await.unwrap();
    assert_eq!(printed, 0);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn cert_enable_warns_when_the_key_matches_no_printed_tlsa_record(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    add_edges(&mut admin, &["mail1", "mail2"]).await;
    let current = certificate("mail1.contoso.com", "A".repeat(40).as_str(), 30, true);
    let renewed = certificate("mail1.contoso.com", "B".repeat(40).as_str(), 1, false);
    let enable = |edge: &str, thumbprint: &str| pb::EnableCertificateRequest {
        edge: edge.to_owned(),
        thumbprint: thumbprint.to_owned(),
        services: strings(&["smtp"]),
    };

    // Nothing printed yet for the edge: no warning.
    report(&controller, "mail1", &[&current, &renewed]).await;
    let answer = admin.enable_certificate(enable("mail1", &"B".repeat(40))).await.unwrap().into_inner();
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);

    // Printed while only the current certificate was there; then a new one arrives.
    report(&controller, "mail1", &[&current]).await;
    admin.publish_tlsa(tlsa_request("mail1", 0)).await.unwrap();
    report(&controller, "mail1", &[&current, &renewed]).await;
    let (current_hash, renewed_hash) = (spki_sha256(&current.der), spki_sha256(&renewed.der));
    let answer = admin.enable_certificate(enable("mail1", &"B".repeat(40))).await.unwrap().into_inner();
    assert_eq!(answer.tasks.len(), 1, "the enable is queued all the same");
    assert_eq!(
        answer.warnings,
        [format!(
            "the published TLSA records for mail1.contoso.com (3 1 1 {}…) do not match this certificate's key; \
             publish \"_25._tcp.mail1.contoso.com. IN TLSA 3 1 1 {renewed_hash}\" and wait for the DNS TTL before \
             enabling, or DANE senders will defer mail",
            &current_hash[..16]
        )]
    );
    // The current key matches: no warning.
    let answer = admin.enable_certificate(enable("mail1", &"a".repeat(40))).await.unwrap().into_inner();
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);
    // Printed again (current + next): the new certificate matches now.
    admin.publish_tlsa(tlsa_request("mail1", 0)).await.unwrap();
    let answer = admin.enable_certificate(enable("mail1", &"B".repeat(40))).await.unwrap().into_inner();
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);
    // Another edge with nothing printed: no warning.
    report(&controller, "mail2", &[&renewed]).await;
    let answer = admin.enable_certificate(enable("mail2", &"B".repeat(40))).await.unwrap().into_inner();
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);
}

fn mta_sts_request(mode: &str, max_age_seconds: Option<u64>) -> pb::PublishMtaStsRequest {
    pb::PublishMtaStsRequest { mode: mode.to_owned(), max_age_seconds }
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn publish_mta_sts_stores_the_policy_and_changes_its_id_only_with_it(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    add_edges(&mut admin, &["mail1", "mail2"]).await;
    admin.create_receive_connector(inet_connector("mail1")).await.unwrap();
    for domain in ["contoso.com", "*.contoso.com", "fabrikam.com"] {
        admin.add_accepted_domain(pb::AddAcceptedDomainRequest { domain: domain.into() }).await.unwrap();
    }
    let first = admin.publish_mta_sts(mta_sts_request("enforce", None)).await.unwrap().into_inner();
    assert_eq!(first.policy, "version: STSv1\r\nmode: enforce\r\nmx: mail1.contoso.com\r\nmax_age: 604800\r\n");
    assert_eq!(first.mx, ["mail1.contoso.com"], "mail2 has no receive connector");
    assert!(first.changed);
    assert!(first.id.len() <= 32 && first.id.bytes().all(|b| b.is_ascii_alphanumeric()), "{}", first.id);
    let lines: Vec<&str> = first.records.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            format!("_mta-sts.contoso.com. IN TXT \"v=STSv1; id={}\"", first.id),
            format!("_mta-sts.fabrikam.com. IN TXT \"v=STSv1; id={}\"", first.id),
        ]
    );
    let stored: (String, String) =
        sqlx::query_as("SELECT policy_id, policy_text FROM mta_sts_policy").fetch_one(&controller.pool).await.unwrap();
    assert_eq!(stored, (first.id.clone(), first.policy.clone()));
    let audit: String = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id DESC LIMIT 1")
        .fetch_one(&controller.pool)
        .await
        .unwrap();
    assert_eq!(audit, "mta-sts.publish");

    // Nothing changed: the same id, nothing written.
    let (version, rows) = (controller.config_version().await, controller.audit_rows().await);
    let again = admin.publish_mta_sts(mta_sts_request("enforce", Some(604_800))).await.unwrap().into_inner();
    assert_eq!((again.id.as_str(), again.changed), (first.id.as_str(), false));
    assert_eq!(again.published_at, first.published_at);
    assert_eq!((controller.config_version().await, controller.audit_rows().await), (version, rows));

    // The edges changed: mail2 receives mail now. A new id for the new text.
    admin.create_receive_connector(inet_connector("mail2")).await.unwrap();
    let second = admin.publish_mta_sts(mta_sts_request("enforce", None)).await.unwrap().into_inner();
    assert_eq!(second.mx, ["mail1.contoso.com", "mail2.contoso.com"]);
    assert!(second.changed);
    assert_ne!(second.id, first.id);
    // The mode or max_age changed: a new id again.
    let third = admin.publish_mta_sts(mta_sts_request("testing", Some(86_400))).await.unwrap().into_inner();
    assert_eq!(
        third.policy,
        "version: STSv1\r\nmode: testing\r\nmx: mail1.contoso.com\r\nmx: mail2.contoso.com\r\nmax_age: 86400\r\n"
    );
    assert_ne!(third.id, second.id);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn publish_mta_sts_refusals_name_the_field_and_the_role(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    add_edges(&mut admin, &["mail1"]).await;
    let viewer = controller.issue(Role::ViewOnly, "auditor", &[]).await;
    let server = controller.issue(Role::ServerAdmin, "ops", &["mail1"]).await;
    for credentials in [viewer, server] {
        let mut client = controller.client(&credentials).await;
        assert_refused(
            client.publish_mta_sts(mta_sts_request("none", None)).await,
            Code::PermissionDenied,
            "publish the MTA-STS policy requires role org-admin",
        );
    }
    assert_status(
        admin.publish_mta_sts(mta_sts_request("strict", None)).await,
        Code::InvalidArgument,
        "mode \"strict\": must be enforce, testing or none (RFC 8461 section 5)",
    );
    assert_status(
        admin.publish_mta_sts(mta_sts_request("", None)).await,
        Code::InvalidArgument,
        "mode: must be enforce, testing or none (RFC 8461 section 5)",
    );
    assert_status(
        admin.publish_mta_sts(mta_sts_request("enforce", Some(31_557_601))).await,
        Code::InvalidArgument,
        "max_age_seconds \"31557601\": at most 31557600 seconds (RFC 8461 section 3.2)",
    );
    assert_refused(
        admin.publish_mta_sts(mta_sts_request("enforce", None)).await,
        Code::InvalidArgument,
        "mode \"enforce\": no edge has a receive connector open to the internet",
    );
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mta_sts_policy").fetch_one(&controller.pool).await.unwrap();
    assert_eq!(stored, 0, "nothing stored by a refusal");
    // Mode none needs no MX host (it withdraws a policy).
    let none = admin.publish_mta_sts(mta_sts_request("none", Some(0))).await.unwrap().into_inner();
    assert_eq!(none.policy, "version: STSv1\r\nmode: none\r\nmax_age: 0\r\n");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn publish_tls_rpt_prints_a_record_per_accepted_domain_and_refuses_bad_uris(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    for domain in ["contoso.com", "fabrikam.com"] {
        admin.add_accepted_domain(pb::AddAcceptedDomainRequest { domain: domain.into() }).await.unwrap();
    }
    let viewer = controller.issue(Role::ViewOnly, "auditor", &[]).await;
    let mut viewer = controller.client(&viewer).await;
    let request = |rua: &[&str]| pb::PublishTlsRptRequest { rua: strings(rua) };
    let answer = viewer
        .publish_tls_rpt(request(&["mailto:tlsrpt@contoso.com", "https://reports.contoso.com/tlsrpt"]))
        .await
        .unwrap()
        .into_inner();
    let lines: Vec<&str> = answer.records.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "_smtp._tls.contoso.com. IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@contoso.com,https://reports.contoso.com/tlsrpt\"",
            "_smtp._tls.fabrikam.com. IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@contoso.com,https://reports.contoso.com/tlsrpt\"",
        ]
    );
    assert_status(
        viewer.publish_tls_rpt(request(&["mailto:tlsrpt@contoso.com", "http://reports.contoso.com/"])).await,
        Code::InvalidArgument,
        "rua[1] \"http://reports.contoso.com/\": must be a mailto: or https: URI (RFC 8460 section 3)",
    );
    assert_status(
        viewer.publish_tls_rpt(request(&[])).await,
        Code::InvalidArgument,
        "rua: give at least one mailto: or https: URI for the reports",
    );
    assert_refused(
        viewer.publish_tls_rpt(request(&["mailto:a@contoso.com,mailto:b@contoso.com"])).await,
        Code::InvalidArgument,
        "rua[0] \"mailto:a@contoso.com,mailto:b@contoso.com\": ',' is not allowed",
    );
    assert_refused(
        viewer.publish_tls_rpt(request(&["mailto:contoso.com"])).await,
        Code::InvalidArgument,
        "needs an address",
    );
}

/// The test PKI: a CA and the policy host's certificate, as files.
struct PolicyHostPki {
    _dir: tempfile::TempDir,
    certificate: std::path::PathBuf,
    key: std::path::PathBuf,
    ca_der: Vec<u8>,
}

fn policy_host_pki() -> PolicyHostPki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Test Web CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["mta-sts.contoso.com".to_owned(), "mta-sts.fabrikam.com".to_owned()])
            .unwrap();
    let leaf = params.signed_by(&key, &issuer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certificate = dir.path().join("mta-sts.pem");
    let key_path = dir.path().join("mta-sts.key");
    std::fs::write(&certificate, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    PolicyHostPki { _dir: dir, certificate, key: key_path, ca_der: ca.der().to_vec() }
}

/// Sends `request` over TLS (name `host`, the test CA as the only root) and returns
/// everything the server wrote before it closed.
async fn https(address: std::net::SocketAddr, ca_der: &[u8], host: &str, request: &[u8]) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(ca_der.to_vec())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), tls.read_to_end(&mut answer)).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn the_policy_host_serves_the_stored_policy_over_https(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    add_edges(&mut admin, &["mail1"]).await;
    admin.create_receive_connector(inet_connector("mail1")).await.unwrap();
    let pki = policy_host_pki();
    let tls = controller::mta_sts_https::server_config(&pki.certificate, &pki.key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(controller::mta_sts_https::serve(listener, tls, controller.pool.clone(), shutdown));
    let host = "mta-sts.contoso.com";

    let answer = https(address, &pki.ca_der, host, &get("/.well-known/mta-sts.txt", host)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "no policy stored yet: {answer}");

    let published = admin.publish_mta_sts(mta_sts_request("enforce", None)).await.unwrap().into_inner();
    for host in ["mta-sts.contoso.com", "mta-sts.fabrikam.com"] {
        let answer = https(address, &pki.ca_der, host, &get("/.well-known/mta-sts.txt", host)).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("\r\ncontent-type: text/plain\r\n"), "{answer}");
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        assert_eq!(body, published.policy);
    }

    let answer = https(address, &pki.ca_der, host, &get("/.well-known/other.txt", host)).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let post = b"POST /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.contoso.com\r\nContent-Length: 0\r\n\r\n";
    let answer = https(address, &pki.ca_der, host, post).await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("\r\nallow: get\r\n"), "{answer}");

    // A request head past 8 KiB is refused, not read on.
    let oversized =
        format!("GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nX-Padding: {}\r\n\r\n", "a".repeat(9 * 1024));
    let answer = https(address, &pki.ca_der, host, oversized.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // The listener serves on after all of that.
    let answer = https(address, &pki.ca_der, host, &get("/.well-known/mta-sts.txt", host)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
}

#[test]
fn the_policy_host_refuses_files_without_a_certificate_or_key() {
    let pki = policy_host_pki();
    let error = controller::mta_sts_https::server_config(&pki.key, &pki.key).unwrap_err();
    assert!(error.to_string().ends_with("no PEM CERTIFICATE block (give the certificate, then its chain)"), "{error}");
    let error = controller::mta_sts_https::server_config(&pki.certificate, &pki.certificate).unwrap_err();
    assert!(error.to_string().contains("no PEM private key"), "{error}");
    let missing = pki.certificate.with_file_name("absent.pem");
    let error = controller::mta_sts_https::server_config(&missing, &pki.key).unwrap_err();
    assert!(error.to_string().starts_with("read "), "{error}");
}
