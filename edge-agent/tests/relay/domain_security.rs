//! Domain Security on the wire, the paper's rules one by one: Contoso and
//! Woodgrove Bank, each with its own edge, a test PKI both trust, CRLs over HTTP.

use std::{sync::atomic::Ordering, time::Duration};

use domainsec_model::{DomainPattern, PermissionGroup};
use edge::{
    apply::EdgeConfig,
    config::EdgeSettings,
    protocol_log::{LogKind, LogQuery, query},
};

use super::{pki::*, support::*};

const TED: &str = "ted@contoso.com";
const KIM: &str = "kim@woodgrovebank.com";

/// One organization's edge: accepted `domain`, both secure lists naming `partner`,
/// Domain Security on `Internet` (send) and `Inet` (receive), `FromHub` for its servers.
pub(super) fn organization(domain: &str, fqdn: &str, partner: &str, root: &[u8]) -> EdgeConfig {
    let mut config = contoso_config();
    config.fqdn = domainsec_model::Domain::parse(fqdn).unwrap();
    config.accepted_domains = vec![DomainPattern::parse(domain).unwrap()];
    config.transport.tls_send_domain_secure_list = vec![DomainPattern::parse(partner).unwrap()];
    config.transport.tls_receive_domain_secure_list = vec![DomainPattern::parse(partner).unwrap()];
    config.send_connectors[0].domain_secure_enabled = true;
    let inet = &mut config.receive_connectors[0];
    inet.domain_secure_enabled = true;
    inet.permission_groups = vec![PermissionGroup::AnonymousUsers, PermissionGroup::Partners];
    config.receive_connectors.push(from_hub_connector(free_port()));
    config.trusted_roots = vec![root.to_vec()];
    config
}

pub(super) fn settings_routing(partner: &str, address: std::net::SocketAddr) -> EdgeSettings {
    let mut settings = test_settings();
    settings.domain_security.platform_roots = false;
    settings.queue.retry_initial = Duration::from_secs(60);
    settings.queue.retry_max = Duration::from_secs(60);
    route(&mut settings, partner, &[(10, address)]);
    settings
}

/// Contoso and Woodgrove, each with a certificate from the shared root (Woodgrove's may be overridden).
struct Partners {
    pki: TestPki,
    contoso: TestRelay,
    woodgrove: TestRelay,
}

async fn partners(woodgrove_leaf: impl FnOnce(&TestPki) -> Leaf) -> Partners {
    let pki = TestPki::new("Public").await;
    let contoso_config = organization("contoso.com", "mail1.contoso.com", "woodgrovebank.com", &pki.root_der);
    let woodgrove_config = organization("woodgrovebank.com", "mail.woodgrovebank.com", "contoso.com", &pki.root_der);
    let (contoso_inet, woodgrove_inet) = (
        contoso_config.receive_connectors[0].bindings[0].socket_addr(),
        woodgrove_config.receive_connectors[0].bindings[0].socket_addr(),
    );
    let contoso = TestRelay::start(contoso_config, settings_routing("woodgrovebank.com", woodgrove_inet)).await;
    let woodgrove = TestRelay::start(woodgrove_config, settings_routing("contoso.com", contoso_inet)).await;
    let contoso_leaf = pki.issue(LeafSpec::new(&["mail1.contoso.com", "mail.contoso.com"]));
    install(&contoso, &contoso_leaf, &[&pki.root_der]);
    let leaf = woodgrove_leaf(&pki);
    install(&woodgrove, &leaf, &[&pki.root_der]);
    Partners { pki, contoso, woodgrove }
}

fn good_woodgrove(pki: &TestPki) -> Leaf {
    pki.issue(LeafSpec::new(&["mail.woodgrovebank.com"]))
}

async fn submit(relay: &TestRelay, from: &str, to: &str, subject: &str) {
    let mut client = Client::connect(relay.address("FromHub")).await;
    client.command("EHLO hub.example", 250).await;
    let reply = client.send_message(from, &[to], &format!("Subject: {subject}\r\n\r\nbody")).await;
    assert!(reply.starts_with("250 "), "{reply}");
}

fn counts(relay: &TestRelay) -> edge::domain_security::counters::Counts {
    relay.relay.security.counters.counts()
}

async fn send_log(relay: &TestRelay, needle: &str) -> String {
    eventually(&format!("{needle:?} in the send log"), || async {
        let lines = query(&relay.relay.send_log, LogKind::Send, &LogQuery::default()).unwrap().join("\n");
        lines.contains(needle).then_some(lines)
    })
    .await
}

async fn queued_error(relay: &TestRelay) -> String {
    eventually("a failed attempt", || async { relay.relay.queue.list().first().and_then(|m| m.last_error.clone()) })
        .await
}

#[tokio::test]
async fn partners_exchange_mail_both_ways_marked_domain_secured() {
    let partners = partners(good_woodgrove).await;
    submit(&partners.contoso, TED, KIM, "to Woodgrove").await;
    let mail = partners.woodgrove.wait_for_mail(KIM, 1).await.remove(0);
    assert!(mail.contains("X-DomainSec-Auth: partner; domain=contoso.com; cert="), "{mail}");
    assert!(mail.contains("Authentication-Results: mail.woodgrovebank.com; x-domainsec=pass"), "{mail}");
    submit(&partners.woodgrove, KIM, TED, "to Contoso").await;
    let mail = partners.contoso.wait_for_mail(TED, 1).await.remove(0);
    assert!(mail.contains("X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert="), "{mail}");

    let (contoso, woodgrove) = (counts(&partners.contoso), counts(&partners.woodgrove));
    assert_eq!((contoso.messages_sent, contoso.messages_received, contoso.outbound_session_failures), (1, 1, 0));
    assert_eq!((woodgrove.messages_sent, woodgrove.messages_received), (1, 1));
    assert_eq!(contoso.partners["woodgrovebank.com"].sent, 1);
    // The partner's certificate was checked against a fetched CRL.
    assert!(partners.pki.crl_fetches.load(Ordering::SeqCst) >= 1);
    let log = send_log(&partners.contoso, "Domain Secured: woodgrovebank.com").await;
    assert!(log.contains(",*,,Sending certificate"), "the client certificate went out:\n{log}");
}

#[tokio::test]
async fn a_wildcard_certificate_is_accepted_for_its_domain() {
    let partners = partners(|pki| pki.issue(LeafSpec::new(&["*.woodgrovebank.com"]))).await;
    submit(&partners.contoso, TED, KIM, "wildcard").await;
    partners.woodgrove.wait_for_mail(KIM, 1).await;
    assert_eq!(counts(&partners.contoso).messages_sent, 1);
}

#[tokio::test]
async fn a_certificate_two_nodes_deeper_is_a_name_mismatch_and_the_mail_stays_queued() {
    let partners = partners(|pki| pki.issue(LeafSpec::new(&["mail1.us.woodgrovebank.com"]))).await;
    submit(&partners.contoso, TED, KIM, "two deep").await;
    let error = queued_error(&partners.contoso).await;
    assert!(
        error.starts_with("451 4.7.5 ") && error.contains("Server certificate not verified: name mismatch"),
        "{error}"
    );
    let log = send_log(&partners.contoso, "name mismatch").await;
    assert!(log.contains(",>,QUIT,"), "the session ends with QUIT:\n{log}");
    let counts = counts(&partners.contoso);
    assert_eq!((counts.outbound_session_failures, counts.messages_sent), (1, 0));
    assert_eq!(counts.reasons["name-mismatch"], 1);
    assert!(partners.woodgrove.mailbox(KIM).is_empty(), "never delivered without Domain Security");
    assert_eq!(partners.contoso.relay.queue.len(), 1);
}

#[tokio::test]
async fn revoked_expired_and_self_signed_partners_are_refused_outbound() {
    for (case, expected) in [("revoked", "certificate revoked"), ("expired", "expired"), ("self-signed", "not trusted")]
    {
        let partners = partners(|pki| match case {
            "revoked" => {
                let leaf = good_woodgrove(pki);
                pki.revoke(leaf.serial);
                leaf
            }
            "expired" => pki.issue(LeafSpec { expired: true, ..LeafSpec::new(&["mail.woodgrovebank.com"]) }),
            _ => self_signed("mail.woodgrovebank.com"),
        })
        .await;
        submit(&partners.contoso, TED, KIM, case).await;
        let error = queued_error(&partners.contoso).await;
        assert!(error.starts_with("451 4.7.5 "), "{case}: {error}");
        assert!(error.contains("Server certificate not verified") && error.contains(expected), "{case}: {error}");
        assert_eq!(counts(&partners.contoso).outbound_session_failures, 1, "{case}");
        assert!(partners.woodgrove.mailbox(KIM).is_empty(), "{case}");
    }
}

#[tokio::test]
async fn a_crl_outage_is_transient_both_ways() {
    let partners = partners(good_woodgrove).await;
    partners.pki.crl_down.store(true, Ordering::SeqCst);
    submit(&partners.contoso, TED, KIM, "during the outage").await;
    let error = queued_error(&partners.contoso).await;
    assert!(error.starts_with("451 4.7.5 ") && error.contains("revocation check failed"), "{error}");

    // Inbound: Woodgrove's edge (as a client with its certificate) gets a 4xx.
    let leaf = partners.pki.issue(LeafSpec::new(&["mail.woodgrovebank.com"]));
    let mut client = Client::connect(partners.contoso.address("Inet")).await;
    client.command("EHLO mail.woodgrovebank.com", 250).await;
    let mut client = client.start_tls_with(Some((leaf.der.clone(), leaf.key_der.clone()))).await;
    client.command("EHLO mail.woodgrovebank.com", 250).await;
    let reply = client.command(&format!("MAIL FROM:<{KIM}>"), 451).await;
    assert!(reply.starts_with("451 4.7.5") && reply.contains("revocation status cannot be checked now"), "{reply}");
    // The fetch error (URL, address, "connection closed") stays in our logs.
    for internal in ["http://", "127.0.0.1", "connection", ".crl"] {
        assert!(!reply.contains(internal), "the reply leaks {internal:?}: {reply}");
    }

    // The CRL is back: the queued message goes on the next try.
    partners.pki.crl_down.store(false, Ordering::SeqCst);
    let id = partners.contoso.relay.queue.list()[0].id.clone();
    partners.contoso.relay.queue.retry(&id);
    partners.woodgrove.wait_for_mail(KIM, 1).await;
}

#[tokio::test]
async fn a_partner_without_starttls_is_never_sent_plain_text() {
    let sink = Sink::start().await; // offers no STARTTLS
    let pki = TestPki::new("Public").await;
    let config = organization("contoso.com", "mail1.contoso.com", "woodgrovebank.com", &pki.root_der);
    let contoso = TestRelay::start(config, settings_routing("woodgrovebank.com", sink.address)).await;
    install(&contoso, &pki.issue(LeafSpec::new(&["mail1.contoso.com"])), &[&pki.root_der]);
    submit(&contoso, TED, KIM, "must be encrypted").await;
    let error = queued_error(&contoso).await;
    assert!(error.starts_with("451 4.7.4 ") && error.contains("STARTTLS not offered"), "{error}");
    assert!(sink.messages().is_empty());
    assert_eq!(counts(&contoso).reasons["starttls-not-offered"], 1);
}

/// Contoso's inbound side alone, with a client we control.
async fn contoso_inbound(settings: impl FnOnce(&mut EdgeSettings)) -> (TestPki, TestRelay) {
    let pki = TestPki::new("Public").await;
    let config = organization("contoso.com", "mail1.contoso.com", "woodgrovebank.com", &pki.root_der);
    let mut edge_settings = test_settings();
    edge_settings.domain_security.platform_roots = false;
    settings(&mut edge_settings);
    let contoso = TestRelay::start(config, edge_settings).await;
    install(&contoso, &pki.issue(LeafSpec::new(&["mail1.contoso.com"])), &[&pki.root_der]);
    (pki, contoso)
}

async fn mail_from_partner(contoso: &TestRelay, certificate: Option<&Leaf>) -> String {
    let mut client = Client::connect(contoso.address("Inet")).await;
    client.command("EHLO mail.woodgrovebank.com", 250).await;
    let chain = certificate.map(|l| ([vec![l.der.clone()], l.chain.clone()].concat(), l.key_der.clone()));
    let mut client = client.start_tls_with_chain(chain).await;
    client.command("EHLO mail.woodgrovebank.com", 250).await;
    client.send(&format!("MAIL FROM:<{KIM}>")).await;
    client.reply().await
}

#[tokio::test]
async fn inbound_refusals_name_the_problem() {
    let (pki, contoso) = contoso_inbound(|_| {}).await;
    // Plain text from a secure domain: refused before DATA.
    let mut plain = Client::connect(contoso.address("Inet")).await;
    plain.command("EHLO mail.woodgrovebank.com", 250).await;
    let reply = plain.command(&format!("MAIL FROM:<{KIM}>"), 530).await;
    assert!(reply.starts_with("530 5.7.10 Domain Security for woodgrovebank.com: STARTTLS not used"), "{reply}");

    let reply = mail_from_partner(&contoso, None).await;
    assert!(
        reply.starts_with("550 5.7.1 Domain Security for woodgrovebank.com: no client certificate presented"),
        "{reply}"
    );

    let stranger = self_signed("mail.woodgrovebank.com");
    let reply = mail_from_partner(&contoso, Some(&stranger)).await;
    assert!(reply.starts_with("550 5.7.5") && reply.contains("client certificate not trusted"), "{reply}");

    let wrong_name = pki.issue(LeafSpec::new(&["mail.fabrikam.com"]));
    let reply = mail_from_partner(&contoso, Some(&wrong_name)).await;
    assert!(reply.starts_with("550 5.7.5") && reply.contains("name mismatch"), "{reply}");

    let revoked = pki.issue(LeafSpec::new(&["mail.woodgrovebank.com"]));
    pki.revoke(revoked.serial);
    let reply = mail_from_partner(&contoso, Some(&revoked)).await;
    assert!(reply.starts_with("550 5.7.5") && reply.contains("client certificate revoked"), "{reply}");

    let counts = counts(&contoso);
    assert_eq!(counts.inbound_refusals, 5);
    for reason in ["starttls-not-used", "no-certificate", "not-trusted", "name-mismatch", "revoked"] {
        assert_eq!(counts.reasons.get(reason), Some(&1), "{reason}: {:?}", counts.reasons);
    }
}

#[tokio::test]
async fn refusals_can_be_temporary_so_a_partner_queues_instead_of_bouncing() {
    let (_pki, contoso) = contoso_inbound(|s| s.domain_security.temporary_refusals = true).await;
    let reply = mail_from_partner(&contoso, None).await;
    assert!(reply.starts_with("450 4.7.1") && reply.contains("no client certificate presented"), "{reply}");
}

#[tokio::test]
async fn a_server_auth_only_certificate_is_accepted_as_a_client_unless_configured_otherwise() {
    let (pki, contoso) = contoso_inbound(|_| {}).await;
    let server_only = pki.issue(LeafSpec { client_auth: false, ..LeafSpec::new(&["mail.woodgrovebank.com"]) });
    assert!(mail_from_partner(&contoso, Some(&server_only)).await.starts_with("250 2.1.0"));

    let (pki, strict) = contoso_inbound(|s| s.domain_security.accept_server_auth_client_certificates = false).await;
    let server_only = pki.issue(LeafSpec { client_auth: false, ..LeafSpec::new(&["mail.woodgrovebank.com"]) });
    let reply = mail_from_partner(&strict, Some(&server_only)).await;
    assert!(reply.starts_with("550 5.7.5") && reply.contains("not valid for"), "{reply}");
}

#[tokio::test]
async fn the_mark_cannot_be_forged_and_others_keep_opportunistic_tls() {
    let (_pki, contoso) = contoso_inbound(|_| {}).await;
    // fabrikam.com is not on the secure list: TLS without a client certificate is fine,
    // and a mark it brings along is removed.
    let mut client = Client::connect(contoso.address("Inet")).await;
    client.command("EHLO mail.fabrikam.com", 250).await;
    let mut client = client.start_tls().await;
    client.command("EHLO mail.fabrikam.com", 250).await;
    let body = "X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=00\r\n\
                Authentication-Results: mail1.contoso.com; x-domainsec=pass\r\nSubject: forged\r\n\r\nhi";
    let reply = client.send_message("jo@fabrikam.com", &[TED], body).await;
    assert!(reply.starts_with("250 "), "{reply}");
    let mail = contoso.wait_for_mail(TED, 1).await.remove(0);
    assert!(!mail.contains("X-DomainSec-Auth") && !mail.contains("x-domainsec=pass"), "{mail}");
    assert!(mail.contains("with ESMTPS") && mail.contains("Subject: forged"), "{mail}");
    assert_eq!(counts(&contoso).messages_received, 0);
}

#[tokio::test]
async fn counters_survive_a_restart() {
    let partners = partners(good_woodgrove).await;
    submit(&partners.contoso, TED, KIM, "counted").await;
    partners.woodgrove.wait_for_mail(KIM, 1).await;
    let dir = partners.contoso.dir.path().to_owned();
    partners.contoso.relay.security.counters.save();
    let reloaded = edge::domain_security::counters::DomainSecurityCounters::load(&dir);
    assert_eq!(reloaded.counts().messages_sent, 1);
}

#[tokio::test]
async fn prometheus_metrics_show_the_papers_counters() {
    let partners = partners(good_woodgrove).await;
    submit(&partners.contoso, TED, KIM, "measured").await;
    partners.woodgrove.wait_for_mail(KIM, 1).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let endpoints = domainsec_daemon::http::Endpoints {
        metrics: partners.contoso.relay.exposition(),
        ready: std::sync::Arc::new(|| Box::pin(async { Ok(()) })),
    };
    tokio::spawn(domainsec_daemon::http::serve(listener, endpoints, shutdown.clone()));
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    for expected in [
        "HTTP/1.1 200 OK",
        "# HELP domainsec_domain_secured_messages_sent_total Domain-Secured Messages Sent",
        "domainsec_domain_secured_messages_sent_total 1",
        "domainsec_domain_secured_outbound_session_failures_total 0",
        "domainsec_domain_secured_partner_messages_total{partner=\"woodgrovebank.com\",direction=\"sent\"} 1",
        "domainsec_queue_length 0",
        "domainsec_crl_fetches_total 1",
        "# TYPE domainsec_smtp_sessions_inbound_total counter",
        "# TYPE domainsec_certificate_expiry_timestamp_seconds gauge",
        "domainsec_partner_certificate_expiry_timestamp_seconds{partner=\"woodgrovebank.com\"} ",
    ] {
        assert!(response.contains(expected), "{expected:?} not in:\n{response}");
    }
    let page = response.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    // The expiry watch carries the certificates' real ends of validity.
    let own = page.lines().find_map(|l| l.strip_prefix("domainsec_certificate_expiry_timestamp_seconds "));
    let own: i64 = own.unwrap_or_else(|| panic!("no own expiry in:\n{page}")).trim().parse().unwrap();
    let now =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap();
    assert!(own > now, "the edge's certificate is still valid: {own} vs {now}");
    if let Some(verdict) = domainsec_daemon::exposition::promtool_check(page) {
        assert_eq!(verdict, Ok(()), "promtool check metrics:\n{page}");
    }
    shutdown.cancel();
}

#[tokio::test]
async fn crls_are_fetched_through_the_configured_proxy_unless_bypassed() {
    let partners = partners(good_woodgrove).await;
    // A proxy nobody runs: every CRL fetch through it fails (transient).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut config = (*partners.contoso.config.borrow().clone().unwrap()).clone();
    config.transport.crl_proxy = Some(domainsec_model::CrlProxy::parse(&format!("http://{dead}")).unwrap());
    config.version += 1; // every directory change moves the version
    partners.contoso.config.send_replace(Some(std::sync::Arc::new(config.clone())));
    submit(&partners.contoso, TED, KIM, "through the proxy").await;
    let error = queued_error(&partners.contoso).await;
    assert!(error.contains("revocation check failed") && error.contains(&dead.to_string()), "{error}");
    assert_eq!(partners.pki.crl_fetches.load(Ordering::SeqCst), 0, "the CRL server was not contacted directly");

    // The CRL server's address bypasses the proxy: fetched directly, delivered.
    config.transport.crl_proxy_bypass = vec![domainsec_model::ProxyBypass::parse("127.0.0.1").unwrap()];
    config.version += 1;
    partners.contoso.config.send_replace(Some(std::sync::Arc::new(config)));
    let id = partners.contoso.relay.queue.list()[0].id.clone();
    partners.contoso.relay.queue.retry(&id);
    partners.woodgrove.wait_for_mail(KIM, 1).await;
}

#[tokio::test]
async fn cert_verify_reports_revocation_for_each_certificate() {
    let pki = TestPki::new("Public").await;
    let config = organization("contoso.com", "mail1.contoso.com", "woodgrovebank.com", &pki.root_der);
    let contoso = TestRelay::start(config.clone(), test_settings()).await;
    let leaf = pki.issue(LeafSpec::new(&["mail1.contoso.com"]));
    let chain = vec![leaf.der.clone(), pki.root_der.clone()];
    let (lines, ok) = contoso.relay.security.revocation_report(&config, &chain).await;
    assert!(ok, "{lines:?}");
    assert!(lines[0].contains(&format!("CRL {} fetched (next update", pki.crl_url)), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("self-signed root, no CRL to check")), "{lines:?}");
    assert_eq!(lines.last().unwrap(), "revocation: ok; not on any CRL");

    pki.revoke(leaf.serial);
    let fresh = TestRelay::start(
        organization("contoso.com", "mail1.contoso.com", "woodgrovebank.com", &pki.root_der),
        test_settings(),
    )
    .await;
    let (lines, ok) = fresh.relay.security.revocation_report(&config, &chain).await;
    assert!(!ok);
    assert_eq!(lines.last().unwrap(), "revocation: FAILED: certificate revoked", "{lines:?}");
}

#[tokio::test]
async fn intermediates_sent_by_the_partner_complete_the_chain() {
    let partners = partners(|pki| {
        let issuing = pki.intermediate("Woodgrove Issuing CA");
        let leaf = pki.issue_from(&issuing, LeafSpec::new(&["mail.woodgrovebank.com"]));
        // The partner presents leaf + issuing CA; only the root is trusted here.
        leaf.with_chain(issuing.der)
    })
    .await;
    submit(&partners.contoso, TED, KIM, "via an issuing CA").await;
    partners.woodgrove.wait_for_mail(KIM, 1).await;
    assert_eq!(counts(&partners.contoso).messages_sent, 1);
}

#[tokio::test]
async fn only_the_validated_path_is_asked_for_crls_not_extra_certificates_the_peer_sends() {
    let (pki, contoso) = contoso_inbound(|_| {}).await;
    let stranger = TestPki::new("Stranger").await;
    let stray = stranger.intermediate("Stray CA");
    let leaf = pki.issue(LeafSpec::new(&["mail.woodgrovebank.com"])).with_chain(stray.der);
    let fetched_before = stranger.crl_fetches.load(Ordering::SeqCst);

    assert!(mail_from_partner(&contoso, Some(&leaf)).await.starts_with("250 2.1.0"));

    assert_eq!(stranger.crl_fetches.load(Ordering::SeqCst), fetched_before, "a stray certificate's CRL was fetched");
    assert!(pki.crl_fetches.load(Ordering::SeqCst) > 0, "the path's own CRL was checked");
}

#[tokio::test]
async fn a_common_name_is_not_trusted_under_a_name_constrained_ca() {
    let (pki, contoso) = contoso_inbound(|_| {}).await;
    let cn_only = LeafSpec { common_name: "mail.woodgrovebank.com", ..LeafSpec::new(&[]) };
    // An unconstrained issuing CA: the paper's CN fallback holds.
    let open = pki.intermediate("Open Issuing CA");
    let leaf = pki.issue_from(&open, cn_only).with_chain(open.der.clone());
    let reply = mail_from_partner(&contoso, Some(&leaf)).await;
    assert!(reply.starts_with("250 2.1.0"), "{reply}");

    // A CA constrained to fabrikam.com: webpki checks SANs against it, not the CN,
    // so a CN-only certificate for woodgrovebank.com must not pass.
    let constrained = pki.constrained_intermediate("Fabrikam Issuing CA", "fabrikam.com");
    let cn_only = LeafSpec { common_name: "mail.woodgrovebank.com", ..LeafSpec::new(&[]) };
    let leaf = pki.issue_from(&constrained, cn_only).with_chain(constrained.der.clone());
    let reply = mail_from_partner(&contoso, Some(&leaf)).await;
    assert!(reply.starts_with("550 5.7.5") && reply.contains("name-constrained"), "{reply}");
    assert_eq!(counts(&contoso).reasons.get("name-constrained"), Some(&1));
}

#[tokio::test]
async fn a_cross_certificate_lets_a_partners_private_root_chain_to_ours() {
    let public = TestPki::new("Public").await;
    let private = TestPki::new("Woodgrove Private").await;
    // Contoso trusts only Public and the cross-certificate Public issued for Woodgrove's private root.
    let mut config = organization("contoso.com", "mail1.contoso.com", "woodgrovebank.com", &public.root_der);
    config.trusted_roots.push(public.cross_certify(&private));
    let mut settings = test_settings();
    settings.domain_security.platform_roots = false;
    let contoso = TestRelay::start(config, settings).await;
    install(&contoso, &public.issue(LeafSpec::new(&["mail1.contoso.com"])), &[&public.root_der]);
    let woodgrove_leaf = private.issue(LeafSpec::new(&["mail.woodgrovebank.com"]));
    assert!(mail_from_partner(&contoso, Some(&woodgrove_leaf)).await.starts_with("250 2.1.0"));

    // Without the cross-certificate the same partner is not trusted.
    let mut bare = organization("contoso.com", "mail1.contoso.com", "woodgrovebank.com", &public.root_der);
    bare.trusted_roots.truncate(1);
    let mut settings = test_settings();
    settings.domain_security.platform_roots = false;
    let strict = TestRelay::start(bare, settings).await;
    install(&strict, &public.issue(LeafSpec::new(&["mail1.contoso.com"])), &[&public.root_der]);
    let reply = mail_from_partner(&strict, Some(&woodgrove_leaf)).await;
    assert!(reply.starts_with("550 5.7.5") && reply.contains("not trusted"), "{reply}");
}

#[tokio::test]
async fn a_partners_only_connector_takes_verified_partners_and_no_one_else() {
    let pki = TestPki::new("Public").await;
    let mut config = organization("contoso.com", "mail1.contoso.com", "woodgrovebank.com", &pki.root_der);
    config.receive_connectors[0].permission_groups = vec![PermissionGroup::Partners];
    let mut settings = test_settings();
    settings.domain_security.platform_roots = false;
    let contoso = TestRelay::start(config, settings).await;
    install(&contoso, &pki.issue(LeafSpec::new(&["mail1.contoso.com"])), &[&pki.root_der]);
    let partner = pki.issue(LeafSpec::new(&["mail.woodgrovebank.com"]));
    assert!(mail_from_partner(&contoso, Some(&partner)).await.starts_with("250 2.1.0"));
    let mut anonymous = Client::connect(contoso.address("Inet")).await;
    anonymous.command("EHLO mail.fabrikam.com", 250).await;
    let reply = anonymous.command("MAIL FROM:<jo@fabrikam.com>", 530).await;
    assert!(reply.contains("5.7.1 Client was not authenticated"), "{reply}");
}

#[tokio::test]
async fn a_failed_handshake_with_a_partner_is_never_followed_by_plain_text() {
    let sink = Sink::start_with_tls().await;
    sink.broken_tls.store(true, Ordering::SeqCst);
    let pki = TestPki::new("Public").await;
    let config = organization("contoso.com", "mail1.contoso.com", "woodgrovebank.com", &pki.root_der);
    let contoso = TestRelay::start(config, settings_routing("woodgrovebank.com", sink.address)).await;
    install(&contoso, &pki.issue(LeafSpec::new(&["mail1.contoso.com"])), &[&pki.root_der]);
    submit(&contoso, TED, KIM, "handshake fails").await;
    let error = queued_error(&contoso).await;
    assert!(error.starts_with("451 4.7.5 ") && error.contains("TLS handshake failed"), "{error}");
    assert!(sink.messages().is_empty());
    assert_eq!(counts(&contoso).reasons["handshake"], 1);
}
