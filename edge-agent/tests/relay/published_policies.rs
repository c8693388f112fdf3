//! DANE (RFC 7672) and MTA-STS (RFC 8461) against real infrastructure on loopback: a
//! validating resolver (unbound) over a signed authoritative zone (nsd), an HTTPS policy
//! server with a test CA's certificate, and test MX hosts. Each rule of the policy order
//! is asserted by where the message goes (or that it stays queued, with its reason).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use domainsec_model::DomainPattern;
use edge::config::EdgeSettings;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use super::{
    dns_lab::{DnsLab, Signing, Zone, zone_line_for_tlsa},
    pki::{Leaf, LeafSpec, TestPki, self_signed},
    support::{Client, Sink, TestRelay, contoso_config, eventually, free_port, from_hub_connector, test_settings},
};

const TED: &str = "ted@contoso.com";

/// The lab: zones, the MX sinks, the policy server, and the edge's settings.
struct Lab {
    /// Kept running for the test's length.
    _dns: DnsLab,
    _pki: TestPki,
    sinks: HashMap<&'static str, Sink>,
    policies: PolicyServer,
    settings: EdgeSettings,
    _roots: tempfile::NamedTempFile,
}

fn spki_sha256(der: &[u8]) -> Vec<u8> {
    let (_, certificate) = X509Certificate::from_der(der).unwrap();
    ring::digest::digest(&ring::digest::SHA256, certificate.tbs_certificate.subject_pki.raw).as_ref().to_vec()
}

fn sha256(der: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, der).as_ref().to_vec()
}

/// Whether the lab's programs are installed; without them the test is skipped with a
/// note, unless `DOMAINSEC_REQUIRE_DNS_LAB` is set (CI installs them and sets it).
fn lab_available() -> bool {
    match DnsLab::available() {
        Ok(()) => true,
        Err(reason) if std::env::var_os("DOMAINSEC_REQUIRE_DNS_LAB").is_some() => panic!("{reason}"),
        Err(reason) => {
            eprintln!("skipped: {reason}");
            false
        }
    }
}

impl Lab {
    /// MX sinks: `ee` (a certificate its TLSA 3 1 1 names), `ta` (issued by the lab CA,
    /// whose certificate its TLSA 2 0 1 names), `ta-wrong-name`, `self` (self-signed),
    /// `sts` (lab CA, for MTA-STS); zones: `dane.test` signed, `plain.test` unsigned,
    /// `bogus.test` with expired signatures, `sts.test` unsigned with MTA-STS records.
    async fn start(sts_id: &str, cache_mx: &str) -> Self {
        let pki = TestPki::new("Lab").await;
        let ee = self_signed("mx-ee.dane.test");
        let ta = pki.issue(LeafSpec::new(&["mx-ta.dane.test"])).with_chain(pki.root_der.clone());
        let ta_wrong = pki.issue(LeafSpec::new(&["mx.elsewhere.test"])).with_chain(pki.root_der.clone());
        let sts = pki.issue(LeafSpec::new(&["mx.enforce.sts.test", "mx.cache.sts.test", "mx.offlist.sts.test"]));
        let sinks = HashMap::from([
            ("ee", start_sink(&ee).await),
            ("ta", start_sink(&ta).await),
            ("ta-wrong-name", start_sink(&ta_wrong).await),
            ("self", start_sink(&self_signed("mx.plain.test")).await),
            ("sts", start_sink(&sts).await),
        ]);
        let root_hash = sha256(&pki.root_der);
        let dane_records = [
            "ee MX 10 mx-ee".to_owned(),
            zone_line_for_tlsa("_25._tcp.mx-ee", 3, 1, 1, &spki_sha256(&ee.der)),
            "mismatch MX 10 mx-mismatch".to_owned(),
            zone_line_for_tlsa("_25._tcp.mx-mismatch", 3, 1, 1, &[0xab; 32]),
            "ta MX 10 mx-ta".to_owned(),
            zone_line_for_tlsa("_25._tcp.mx-ta", 2, 0, 1, &root_hash),
            "ta-wrong-name MX 10 mx-ta-wrong-name".to_owned(),
            zone_line_for_tlsa("_25._tcp.mx-ta-wrong-name", 2, 0, 1, &root_hash),
            "no-tlsa MX 10 mx-no-tlsa".to_owned(),
            "unusable MX 10 mx-unusable".to_owned(),
            zone_line_for_tlsa("_25._tcp.mx-unusable", 1, 1, 1, &[0xab; 32]),
            "bogus-tlsa MX 10 mx.bogus.test.".to_owned(),
        ];
        let sts_records = [
            format!("_mta-sts.enforce TXT \"v=STSv1; id={sts_id};\""),
            "enforce MX 10 mx.enforce".to_owned(),
            format!("_mta-sts.offlist TXT \"v=STSv1; id={sts_id};\""),
            "offlist MX 10 mx.offlist".to_owned(),
            format!("_mta-sts.testing TXT \"v=STSv1; id={sts_id};\""),
            "testing MX 10 mx.testing".to_owned(),
            format!("_mta-sts.cache TXT \"v=STSv1; id={sts_id};\""),
            format!("cache MX 10 {cache_mx}"),
        ];
        let dns = DnsLab::start(vec![
            Zone::new("dane.test", Signing::Signed, &dane_records.iter().map(String::as_str).collect::<Vec<_>>()),
            Zone::new(
                "plain.test",
                Signing::Unsigned,
                &["@ MX 10 mx", &zone_line_for_tlsa("_25._tcp.mx", 3, 1, 1, &[0xab; 32])],
            ),
            Zone::new("bogus.test", Signing::Bogus, &["@ MX 10 mx", "mx A 127.0.0.1"]),
            Zone::new("sts.test", Signing::Unsigned, &sts_records.iter().map(String::as_str).collect::<Vec<_>>()),
        ])
        .await;
        let policy_certificate = pki.issue(LeafSpec::new(&[
            "mta-sts.enforce.sts.test",
            "mta-sts.offlist.sts.test",
            "mta-sts.testing.sts.test",
            "mta-sts.cache.sts.test",
        ]));
        let policies = PolicyServer::start(&policy_certificate).await;
        let roots = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(roots.path(), pem::encode(&pem::Pem::new("CERTIFICATE", pki.root_der.clone()))).unwrap();

        let mut settings = test_settings();
        settings.dns.static_only = false;
        settings.dns.resolver = Some(dns.resolver());
        settings.mta_sts.extra_roots = Some(roots.path().to_owned());
        let hosts = [
            ("mx-ee.dane.test", "ee"),
            ("mx-mismatch.dane.test", "ee"),
            ("mx-ta.dane.test", "ta"),
            ("mx-ta-wrong-name.dane.test", "ta-wrong-name"),
            ("mx-no-tlsa.dane.test", "self"),
            ("mx-unusable.dane.test", "self"),
            ("mx.bogus.test", "self"),
            ("mx.plain.test", "self"),
            ("mx.enforce.sts.test", "sts"),
            ("mx.offlist.sts.test", "sts"),
            ("mx.testing.sts.test", "self"),
            ("mx.cache.sts.test", "sts"),
            ("mx.rogue.test", "self"),
        ];
        for (host, sink) in hosts {
            settings.dns.hosts.insert(host.into(), vec![sinks[sink].address.to_string()]);
        }
        for domain in ["enforce", "offlist", "testing", "cache"] {
            settings.dns.hosts.insert(format!("mta-sts.{domain}.sts.test"), vec![policies.address.to_string()]);
        }
        policies.set(
            "mta-sts.enforce.sts.test",
            "version: STSv1\r\nmode: enforce\r\nmx: *.enforce.sts.test\r\nmax_age: 86400\r\n",
        );
        policies.set(
            "mta-sts.offlist.sts.test",
            "version: STSv1\r\nmode: enforce\r\nmx: mx.elsewhere.test\r\nmax_age: 86400\r\n",
        );
        policies
            .set("mta-sts.testing.sts.test", "version: STSv1\nmode: testing\nmx: mx.elsewhere.test\nmax_age: 86400\n");
        policies.set(
            "mta-sts.cache.sts.test",
            "version: STSv1\r\nmode: enforce\r\nmx: mx.cache.sts.test\r\nmax_age: 86400\r\n",
        );
        Self { _dns: dns, _pki: pki, sinks, policies, settings, _roots: roots }
    }

    async fn edge(&self) -> TestRelay {
        edge_with(self.settings.clone(), None).await
    }
}

async fn edge_with(settings: EdgeSettings, dir: Option<tempfile::TempDir>) -> TestRelay {
    let mut config = contoso_config();
    config.receive_connectors.push(from_hub_connector(free_port()));
    match dir {
        Some(dir) => TestRelay::start_in(dir, config, settings).await,
        None => TestRelay::start(config, settings).await,
    }
}

async fn start_sink(leaf: &Leaf) -> Sink {
    let mut chain = vec![leaf.der.clone()];
    chain.extend(leaf.chain.iter().cloned());
    Sink::start_with_chain(chain, leaf.key_der.clone()).await
}

async fn submit(relay: &TestRelay, to: &str) {
    let mut client = Client::connect(relay.address("FromHub")).await;
    client.command("EHLO hub.example", 250).await;
    let reply = client.send_message(TED, &[to], &format!("Subject: to {to}\r\n\r\nbody")).await;
    assert!(reply.starts_with("250 "), "{reply}");
}

/// The queued message for `to` once an attempt failed: its last error.
async fn deferred(relay: &TestRelay, to: &str) -> String {
    let error = eventually(&format!("a failed attempt for {to}"), || async {
        relay.relay.queue.list().into_iter().find(|m| m.pending.iter().any(|p| p == to)).and_then(|m| m.last_error)
    })
    .await;
    // Printed for the README (`-- --nocapture`).
    eprintln!("queued for {to}: {error}");
    error
}

async fn delivered(sink: &Sink, to: &str) -> super::support::Received {
    eventually(&format!("{to} at its MX"), || async {
        sink.messages().into_iter().find(|m| m.to.iter().any(|r| r == to))
    })
    .await
}

fn reason_count(relay: &TestRelay, domain: &str, reason: &str) -> u64 {
    let counts = relay.relay.security.counters.counts();
    let key = DomainPattern::parse(domain).unwrap().to_string();
    counts.partners.get(&key).and_then(|p| p.reasons.get(reason)).copied().unwrap_or(0)
}

#[tokio::test]
async fn dane_ee_and_dane_ta_records_that_match_deliver_over_tls() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let edge = lab.edge().await;
    submit(&edge, "kim@ee.dane.test").await;
    submit(&edge, "kim@ta.dane.test").await;
    assert!(delivered(&lab.sinks["ee"], "kim@ee.dane.test").await.tls);
    assert!(delivered(&lab.sinks["ta"], "kim@ta.dane.test").await.tls);
    let counts = edge.relay.security.counters.counts();
    assert_eq!(counts.partners["ee.dane.test"].outbound_sessions, 1, "{counts:?}");
    assert_eq!(counts.partners["ee.dane.test"].reasons["policy.dane"], 1, "the TLS report's policy type");
    assert_eq!(counts.messages_sent, 0, "DANE is not Domain Security: the paper's counter stays");
}

#[tokio::test]
async fn dane_records_that_do_not_match_keep_the_message_queued() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let edge = lab.edge().await;
    submit(&edge, "kim@mismatch.dane.test").await;
    submit(&edge, "kim@ta-wrong-name.dane.test").await;
    let error = deferred(&edge, "kim@mismatch.dane.test").await;
    assert!(error.starts_with("451 4.7.5 ") && error.contains("DANE: no TLSA record matched"), "{error}");
    let error = deferred(&edge, "kim@ta-wrong-name.dane.test").await;
    assert!(error.starts_with("451 4.7.5 ") && error.contains("DANE: the certificate is not for"), "{error}");
    assert!(lab.sinks["ee"].messages().is_empty() && lab.sinks["ta-wrong-name"].messages().is_empty());
    assert!(reason_count(&edge, "mismatch.dane.test", "outbound.dane.no-match") >= 1);
    assert!(reason_count(&edge, "ta-wrong-name.dane.test", "outbound.dane.name-mismatch") >= 1);
}

#[tokio::test]
async fn insecure_answers_fall_through_and_bogus_answers_defer() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let edge = lab.edge().await;
    // plain.test is unsigned: its (wrong) TLSA record is not believed; opportunistic TLS.
    submit(&edge, "kim@plain.test").await;
    assert!(delivered(&lab.sinks["self"], "kim@plain.test").await.tls);
    // A secure MX whose host has no TLSA record: not a DANE host.
    submit(&edge, "kim@no-tlsa.dane.test").await;
    delivered(&lab.sinks["self"], "kim@no-tlsa.dane.test").await;
    // Only unusable (PKIX-EE) records: TLS is mandatory, the certificate is not checked.
    submit(&edge, "kim@unusable.dane.test").await;
    assert!(delivered(&lab.sinks["self"], "kim@unusable.dane.test").await.tls);
    // A secure MX whose host's TLSA answer is bogus: never delivered.
    submit(&edge, "kim@bogus-tlsa.dane.test").await;
    let error = deferred(&edge, "kim@bogus-tlsa.dane.test").await;
    assert!(error.starts_with("451 4.7.5 DANE: TLSA lookup for mx.bogus.test failed"), "{error}");
    // A bogus MX answer: no route at all.
    submit(&edge, "kim@bogus.test").await;
    let error = deferred(&edge, "kim@bogus.test").await;
    assert!(error.starts_with("451 4.4.3 "), "{error}");
    let received: Vec<String> = lab.sinks["self"].messages().into_iter().flat_map(|m| m.to).collect();
    assert!(!received.iter().any(|r| r.contains("bogus")), "{received:?}");
}

#[tokio::test]
async fn a_dane_mx_host_without_starttls_is_never_sent_plain_text() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let plain = Sink::start().await;
    let mut settings = lab.settings.clone();
    settings.dns.hosts.insert("mx-ee.dane.test".into(), vec![plain.address.to_string()]);
    let edge = edge_with(settings, None).await;
    submit(&edge, "kim@ee.dane.test").await;
    let error = deferred(&edge, "kim@ee.dane.test").await;
    assert!(error.starts_with("451 4.7.5 ") && error.contains("DANE: STARTTLS not offered"), "{error}");
    assert!(plain.messages().is_empty());
}

#[tokio::test]
async fn mta_sts_enforce_delivers_to_a_listed_mx_and_refuses_an_unlisted_one() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let edge = lab.edge().await;
    submit(&edge, "kim@enforce.sts.test").await;
    assert!(delivered(&lab.sinks["sts"], "kim@enforce.sts.test").await.tls);
    submit(&edge, "kim@offlist.sts.test").await;
    let error = deferred(&edge, "kim@offlist.sts.test").await;
    assert!(error.starts_with("451 4.7.5 MTA-STS: MX host mx.offlist.sts.test not in policy"), "{error}");
    assert!(!lab.sinks["sts"].messages().iter().any(|m| m.to.iter().any(|r| r.contains("offlist"))));
    assert_eq!(lab.policies.requests.load(Ordering::SeqCst), 2, "one fetch per domain");
    assert!(reason_count(&edge, "offlist.sts.test", "outbound.mta-sts.mx-not-listed") >= 1);
}

#[tokio::test]
async fn mta_sts_enforce_refuses_a_certificate_outside_the_webpki() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let mut settings = lab.settings.clone();
    settings.dns.hosts.insert("mx.enforce.sts.test".into(), vec![lab.sinks["self"].address.to_string()]);
    let edge = edge_with(settings, None).await;
    submit(&edge, "kim@enforce.sts.test").await;
    let error = deferred(&edge, "kim@enforce.sts.test").await;
    assert!(
        error.starts_with("451 4.7.5 ") && error.contains("MTA-STS: certificate not valid under the WebPKI"),
        "{error}"
    );
    assert!(lab.sinks["self"].messages().is_empty());
}

#[tokio::test]
async fn mta_sts_testing_delivers_and_reports_what_enforce_would_refuse() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let edge = lab.edge().await;
    submit(&edge, "kim@testing.sts.test").await;
    delivered(&lab.sinks["self"], "kim@testing.sts.test").await;
    assert_eq!(reason_count(&edge, "testing.sts.test", "outbound.mta-sts-testing.mx-not-listed"), 1);
}

#[tokio::test]
async fn a_cached_policy_survives_a_policy_server_outage_and_a_changed_id() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let edge = lab.edge().await;
    submit(&edge, "kim@cache.sts.test").await;
    delivered(&lab.sinks["sts"], "kim@cache.sts.test").await;
    let cache = std::fs::read_to_string(edge.dir.path().join("mta-sts-cache.toml")).unwrap();
    assert!(cache.contains("cache.sts.test"), "{cache}");

    // The domain's DNS now names a new policy id and an MX the cached policy does not
    // list (what an attacker who controls DNS would do), and the policy server is down.
    // A restarted edge (same data dir) keeps enforcing the policy it cached.
    let lab2 = Lab::start("2", "mx.rogue.test.").await;
    lab.policies.down.store(true, Ordering::SeqCst);
    let mut settings = lab2.settings.clone();
    for domain in ["enforce", "offlist", "testing", "cache"] {
        settings.dns.hosts.insert(format!("mta-sts.{domain}.sts.test"), vec![lab.policies.address.to_string()]);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(edge.dir.path().join("mta-sts-cache.toml"), dir.path().join("mta-sts-cache.toml")).unwrap();
    drop(edge);
    let restarted = edge_with(settings, Some(dir)).await;
    submit(&restarted, "ann@cache.sts.test").await;
    let error = deferred(&restarted, "ann@cache.sts.test").await;
    assert!(error.contains("MTA-STS: MX host mx.rogue.test not in policy"), "{error}");
    assert!(lab2.sinks["self"].messages().is_empty(), "nothing reached the rogue MX");
}

#[tokio::test]
async fn domain_security_still_wins_for_a_listed_domain() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let mut config = contoso_config();
    config.receive_connectors.push(from_hub_connector(free_port()));
    config.transport.tls_send_domain_secure_list = vec![DomainPattern::parse("ee.dane.test").unwrap()];
    config.send_connectors[0].domain_secure_enabled = true;
    let edge = TestRelay::start(config, lab.settings.clone()).await;
    submit(&edge, "kim@ee.dane.test").await;
    // The TLSA record matches, but the paper's rules apply: the self-signed certificate
    // is not from a trusted root, so nothing is sent.
    let error = deferred(&edge, "kim@ee.dane.test").await;
    assert!(error.starts_with("451 4.7.5 ") && error.contains(": Server certificate not verified: "), "{error}");
    assert!(lab.sinks["ee"].messages().is_empty());
    assert!(edge.relay.security.counters.counts().outbound_session_failures >= 1);
}

#[tokio::test]
async fn a_connector_with_dane_and_mta_sts_disabled_uses_opportunistic_tls() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let mut config = contoso_config();
    config.receive_connectors.push(from_hub_connector(free_port()));
    config.send_connectors[0].dane_enabled = false;
    config.send_connectors[0].mta_sts_enabled = false;
    let edge = TestRelay::start(config, lab.settings.clone()).await;
    submit(&edge, "kim@mismatch.dane.test").await;
    submit(&edge, "kim@offlist.sts.test").await;
    delivered(&lab.sinks["ee"], "kim@mismatch.dane.test").await;
    delivered(&lab.sinks["sts"], "kim@offlist.sts.test").await;
    assert_eq!(lab.policies.requests.load(Ordering::SeqCst), 0, "no policy fetched");
}

/// An HTTPS server for `/.well-known/mta-sts.txt`, one policy per Host, that can go down.
struct PolicyServer {
    address: SocketAddr,
    policies: Arc<std::sync::Mutex<HashMap<String, String>>>,
    /// Hosts answered with these bytes as the whole response (hostile servers).
    raw: Arc<std::sync::Mutex<HashMap<String, Vec<u8>>>>,
    down: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
}

impl PolicyServer {
    async fn start(leaf: &Leaf) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut chain = vec![rustls::pki_types::CertificateDer::from(leaf.der.clone())];
        chain.extend(leaf.chain.iter().cloned().map(rustls::pki_types::CertificateDer::from));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, rustls::pki_types::PrivatePkcs8KeyDer::from(leaf.key_der.clone()).into())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Self {
            address: listener.local_addr().unwrap(),
            policies: Arc::default(),
            raw: Arc::default(),
            down: Arc::default(),
            requests: Arc::default(),
        };
        let (policies, down, requests) = (server.policies.clone(), server.down.clone(), server.requests.clone());
        let raw = server.raw.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                if down.load(Ordering::SeqCst) {
                    continue;
                }
                let (acceptor, policies, requests) = (acceptor.clone(), policies.clone(), requests.clone());
                let raw = raw.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else { return };
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    requests.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&head).to_string();
                    let host = head
                        .lines()
                        .find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: ")))
                        .unwrap_or_default()
                        .to_owned();
                    let hostile = raw.lock().unwrap().get(&host).cloned();
                    if let Some(bytes) = hostile {
                        if bytes.is_empty() {
                            // A server that never answers: hold the connection open.
                            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                        }
                        let _ = tls.write_all(&bytes).await;
                        let _ = tls.shutdown().await;
                        return;
                    }
                    let body = policies.lock().unwrap().get(&host).cloned();
                    let response = match body {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
                    };
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        server
    }

    fn set_raw(&self, host: &str, response: Vec<u8>) {
        self.raw.lock().unwrap().insert(host.to_owned(), response);
    }

    fn set(&self, host: &str, policy: &str) {
        self.policies.lock().unwrap().insert(host.to_owned(), policy.to_owned());
    }
}

#[tokio::test]
async fn policy_explain_names_the_policy_source_the_relay_uses() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let edge = lab.edge().await;
    let config = edge.config.borrow().clone().unwrap();
    let certificates = edge::certificates::CertificateStore::new(edge.dir.path());
    let mut sources = Vec::new();
    for to in [
        "kim@ee.dane.test",
        "kim@enforce.sts.test",
        "kim@testing.sts.test",
        "kim@plain.test",
        "kim@bogus-tlsa.dane.test",
    ] {
        let task = proto::edge::CertificateTask {
            id: format!("explain-{to}"),
            action: Some(proto::edge::certificate_task::Action::ExplainPolicy(proto::edge::PolicyQuestion {
                from: TED.into(),
                to: to.into(),
                client_ip: "192.0.2.7".into(),
                ..Default::default()
            })),
        };
        assert!(edge::control::operator::takes_long(&task), "explain looks records up: off the sync loop");
        let state = edge::control::operator::EdgeState {
            relay: Some(&edge.relay),
            running: Some(config.clone()),
            certificates: &certificates,
        };
        let result = edge::control::operator::answer(state, &task).await;
        assert!(result.ok, "{}", result.error);
        let outbound = result.explanation.unwrap().outbound.unwrap();
        // Printed for the README (`-- --nocapture`).
        eprintln!("outbound TLS for {to}: {}: {}", outbound.tls_policy, outbound.tls_policy_detail);
        sources.push((to, outbound.tls_policy, outbound.tls_policy_detail));
    }
    let expected = ["DANE", "MTA-STS (enforce)", "MTA-STS (testing)", "opportunistic TLS", "DANE"];
    for ((to, source, detail), expected) in sources.iter().zip(expected) {
        assert_eq!(source, expected, "{to}: {detail}");
    }
    assert!(sources[1].2.contains("MTA-STS: enforce policy, mx *.enforce.sts.test"), "{}", sources[1].2);
    assert!(sources[3].2.contains("DANE: not used (the MX records are not DNSSEC-validated)"), "{}", sources[3].2);
    // The explanation agrees with what the relay does with a message.
    submit(&edge, "kim@enforce.sts.test").await;
    delivered(&lab.sinks["sts"], "kim@enforce.sts.test").await;
}

#[tokio::test]
async fn hostile_policy_servers_give_no_policy_and_never_a_weaker_one() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    let policy = "version: STSv1\r\nmode: enforce\r\nmx: *.enforce.sts.test\r\nmax_age: 86400\r\n";
    let oversized = format!("{policy}{}", "x_padding: y\r\n".repeat(6000));
    let cases = [
        (
            "enforce",
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{oversized}").into_bytes(),
            "larger than 65536 bytes",
        ),
        (
            "offlist",
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://evil.test/\r\nContent-Length: 0\r\n\r\n".to_vec(),
            "redirects are not followed",
        ),
        (
            "testing",
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{policy}", policy.len())
                .into_bytes(),
            "is not text/plain",
        ),
        ("cache", Vec::new(), "no policy within 1s"),
    ];
    for (domain, response, _) in &cases {
        lab.policies.set_raw(&format!("mta-sts.{domain}.sts.test"), response.clone());
    }
    let mut settings = lab.settings.clone();
    settings.mta_sts.fetch_timeout = std::time::Duration::from_secs(1);
    let edge = edge_with(settings, None).await;
    let config = edge.config.borrow().clone().unwrap();
    for (domain, _, reason) in cases {
        let domain = domainsec_model::Domain::parse(&format!("{domain}.sts.test")).unwrap();
        let started = std::time::Instant::now();
        let (source, detail) = edge.relay.delivery.describe_tls_policy(&config, &domain).await.unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{domain}: bounded by the fetch timeout");
        assert_eq!(source, "opportunistic TLS", "{domain}: {detail}");
        assert!(detail.contains("the policy fetch failed") && detail.contains(reason), "{domain}: {detail}");
    }
    assert!(!edge.dir.path().join("mta-sts-cache.toml").exists(), "nothing hostile was cached");
}

#[tokio::test]
async fn a_routing_answer_outside_the_validated_mx_records_is_never_tried() {
    if !lab_available() {
        return;
    }
    let lab = Lab::start("1", "mx.cache.sts.test.").await;
    // The route the edge takes names a host the signed MX records do not (as a forged
    // answer to the routing lookup would): DANE applies to the domain, so it is skipped.
    let mut settings = lab.settings.clone();
    let rogue = edge::routing::dns::StaticMx { preference: 10, exchange: "mx.rogue.test".into() };
    settings.dns.mx.insert("ee.dane.test".into(), vec![rogue]);
    let edge = edge_with(settings, None).await;
    submit(&edge, "kim@ee.dane.test").await;
    let error = deferred(&edge, "kim@ee.dane.test").await;
    assert!(
        error.starts_with("451 4.7.5 DANE: MX host mx.rogue.test is not in the DNSSEC-validated MX records"),
        "{error}"
    );
    assert!(lab.sinks["self"].messages().is_empty());
}

#[tokio::test]
async fn an_unusable_extra_roots_file_stops_the_relay_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("roots.pem");
    std::fs::write(&not_pem, "no certificate here\n").unwrap();
    for (path, reason) in [(dir.path().join("missing.pem"), "No such file"), (not_pem, "no CERTIFICATE block")] {
        let mut settings = test_settings();
        settings.mta_sts.extra_roots = Some(path);
        let (_, config) = tokio::sync::watch::channel(None);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let error = edge::relay::Relay::start(dir.path(), &settings, config, Arc::default(), &shutdown)
            .err()
            .expect("refused")
            .to_string();
        assert!(error.starts_with("mta_sts.extra_roots ") && error.contains(reason), "{error}");
    }
}
