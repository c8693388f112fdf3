//! `partner test` from Contoso's edge against partner edges shaped to fail one
//! rule each: it passes a good partner and names the failing step of a revoked, a
//! wrong-name, a two-nodes-deep and a no-STARTTLS one — and sends no mail.

use std::sync::atomic::Ordering;

use edge::domain_security::refusal::SecurityFailure;

use super::{
    domain_security::{organization, settings_routing},
    pki::*,
    support::*,
};

const PARTNER: &str = "woodgrovebank.com";

/// Contoso's edge routing woodgrovebank.com to a Woodgrove edge presenting `leaf`
/// (or no certificate at all: no STARTTLS).
async fn contoso_against(pki: &TestPki, leaf: Option<&Leaf>) -> (TestRelay, TestRelay) {
    let woodgrove_config = organization(PARTNER, "mail.woodgrovebank.com", "contoso.com", &pki.root_der);
    let woodgrove_inet = woodgrove_config.receive_connectors[0].bindings[0].socket_addr();
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let woodgrove = TestRelay::start(woodgrove_config, settings_routing("contoso.com", unused)).await;
    if let Some(leaf) = leaf {
        install(&woodgrove, leaf, &[&pki.root_der]);
    }
    let contoso_config = organization("contoso.com", "mail1.contoso.com", PARTNER, &pki.root_der);
    let contoso = TestRelay::start(contoso_config, settings_routing(PARTNER, woodgrove_inet)).await;
    install(&contoso, &pki.issue(LeafSpec::new(&["mail1.contoso.com"])), &[&pki.root_der]);
    (contoso, woodgrove)
}

async fn test(contoso: &TestRelay) -> proto::edge::PartnerTestReport {
    let config = contoso.config.borrow().clone().unwrap();
    contoso.relay.delivery.test_partner(&config, contoso.relay.queue.settings(), PARTNER).await
}

#[tokio::test]
async fn a_good_partner_passes_and_receives_nothing() {
    let pki = TestPki::new("Public").await;
    let good = pki.issue(LeafSpec::new(&["mail.woodgrovebank.com"]));
    let (contoso, woodgrove) = contoso_against(&pki, Some(&good)).await;
    let report = test(&contoso).await;
    assert!(report.passed, "{report:#?}");
    let [host] = report.hosts.as_slice() else { panic!("one next hop: {report:#?}") };
    let steps = host.steps.join("\n");
    for step in [
        "STARTTLS: TLSv1_3",
        "partner certificate: subject",
        "CRLs: 1 fetched",
        "name rule for woodgrovebank.com: passed",
        "QUIT (no message sent)",
    ] {
        assert!(steps.contains(step), "{step:?} missing:\n{steps}");
    }
    assert!(report.steps.iter().any(|s| s.contains("this edge presents")), "{report:#?}");
    assert!(report.reply.contains("Domain Secured"), "{}", report.reply);
    assert_eq!(woodgrove.relay.queue.len(), 0, "no message was sent");
    assert!(woodgrove.mailbox("kim@woodgrovebank.com").is_empty());
    assert!(pki.crl_fetches.load(Ordering::SeqCst) >= 1, "the CRL was fetched as a delivery would");
}

#[tokio::test]
async fn each_failing_partner_is_named_by_its_failing_step() {
    let pki = TestPki::new("Public").await;
    let revoked = pki.issue(LeafSpec::new(&["mail.woodgrovebank.com"]));
    pki.revoke(revoked.serial);
    let cases = [
        ("revoked", Some(revoked), "certificate revoked"),
        ("name-mismatch", Some(pki.issue(LeafSpec::new(&["mail.fabrikam.com"]))), "name mismatch"),
        ("name-mismatch", Some(pki.issue(LeafSpec::new(&["mail.east.woodgrovebank.com"]))), "name mismatch"),
        ("starttls-not-offered", None, "STARTTLS"),
    ];
    for (kind, leaf, words) in cases {
        let (contoso, woodgrove) = contoso_against(&pki, leaf.as_ref()).await;
        let report = test(&contoso).await;
        assert!(!report.passed, "{kind}: {report:#?}");
        let [host] = report.hosts.as_slice() else { panic!("{kind}: one next hop: {report:#?}") };
        assert_eq!(host.failure, kind, "{report:#?}");
        assert!(host.steps.join("\n").contains(words), "{kind}: {words:?} not in {:#?}", host.steps);
        // The exact line a delivery would log, decided by the same refusal type.
        let status = match kind {
            "starttls-not-offered" => SecurityFailure::StartTlsNotOffered.outbound_status(),
            _ => "4.7.5",
        };
        assert!(report.reply.starts_with(&format!("451 {status} mx0.woodgrovebank.com")), "{kind}: {}", report.reply);
        assert_eq!(woodgrove.relay.queue.len(), 0, "{kind}: no message was sent");
    }
}

#[tokio::test]
async fn an_inbound_certificate_is_checked_against_the_receive_rules() {
    let pki = TestPki::new("Public").await;
    let good = pki.issue(LeafSpec::new(&["mail.woodgrovebank.com"]));
    let (contoso, _woodgrove) = contoso_against(&pki, Some(&good)).await;
    let config = contoso.config.borrow().clone().unwrap();
    let report =
        contoso.relay.delivery.test_inbound_certificate(&config, std::slice::from_ref(&good.der), PARTNER).await;
    assert!(report.passed, "{report:#?}");
    let stranger = pki.issue(LeafSpec::new(&["mail.fabrikam.com"]));
    let report =
        contoso.relay.delivery.test_inbound_certificate(&config, std::slice::from_ref(&stranger.der), PARTNER).await;
    assert!(!report.passed);
    assert!(report.steps.iter().any(|s| s.contains("name mismatch")), "{report:#?}");
    assert!(report.reply.starts_with("5") || report.reply.starts_with("4"), "{}", report.reply);
}
