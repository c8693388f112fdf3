//! Sending: routing by MX and smart host, one transaction per domain, reuse,
//! retries, DSNs and expiry.

use std::{sync::atomic::Ordering, time::Duration};

use domainsec_model::{Routing, SmartHost};
use edge::protocol_log::{LogKind, LogQuery, query};

use super::support::*;

const TED: &str = "ted@contoso.com";
const KIM: &str = "kim@woodgrovebank.com";

/// A relay whose `FromHub` connector (the organization's servers) accepts mail for anywhere.
async fn relay_with(
    settings: edge::config::EdgeSettings,
    tweak: impl FnOnce(&mut edge::apply::EdgeConfig),
) -> TestRelay {
    let mut config = contoso_config();
    config.receive_connectors.push(from_hub_connector(free_port()));
    tweak(&mut config);
    TestRelay::start(config, settings).await
}

async fn submit(relay: &TestRelay, from: &str, to: &[&str], subject: &str) {
    let mut client = Client::connect(relay.address("FromHub")).await;
    client.command("EHLO hub.contoso.com", 250).await;
    let reply = client.send_message(from, to, &format!("Subject: {subject}\r\n\r\nbody of {subject}")).await;
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    client.command("QUIT", 221).await;
}

/// An address where nothing listens.
fn dead_address() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[tokio::test]
async fn mail_follows_mx_preference_and_falls_back_to_the_next_host() {
    let sink = Sink::start().await;
    let mut settings = test_settings();
    route(&mut settings, "woodgrovebank.com", &[(20, sink.address), (10, dead_address())]);
    let relay = relay_with(settings, |_| {}).await;
    submit(&relay, TED, &[KIM, "ann@woodgrovebank.com"], "quarterly").await;

    let received = sink.wait_for(1).await;
    assert_eq!(received[0].from, TED);
    assert_eq!(received[0].to, vec![KIM.to_owned(), "ann@woodgrovebank.com".to_owned()], "one transaction per domain");
    assert!(received[0].data.contains("Subject: quarterly"));
    assert!(received[0].data.starts_with("Received: from hub.contoso.com"));
    eventually("an empty queue", || async { relay.relay.queue.is_empty().then_some(()) }).await;

    // The Send protocol log shows the session with the next hop.
    let lines = eventually("the send log", || async {
        let lines = query(&relay.relay.send_log, LogKind::Send, &LogQuery::default()).unwrap();
        lines.iter().any(|l| l.contains("250 2.0.0 queued")).then_some(lines)
    })
    .await
    .join("\n");
    for expected in
        ["Internet,", ",>,EHLO mail1.contoso.com,", ",<,220 sink.test ESMTP,", ",>,RCPT TO:<kim@woodgrovebank.com>,"]
    {
        assert!(lines.contains(expected), "{expected:?} not in:\n{lines}");
    }
}

#[tokio::test]
async fn the_most_specific_send_connector_carries_the_mail() {
    let (woodgrove, internet) = (Sink::start().await, Sink::start().await);
    let mut settings = test_settings();
    route(&mut settings, "fabrikam.com", &[(10, internet.address)]);
    let smart_host = SmartHost::parse(&woodgrove.address.to_string()).unwrap();
    let relay = relay_with(settings, |config| {
        let mut partner = send_connector("Woodgrove", &["woodgrovebank.com"]);
        partner.routing = Routing::SmartHosts(vec![smart_host]);
        config.send_connectors.push(partner);
    })
    .await;
    submit(&relay, TED, &[KIM, "jo@fabrikam.com"], "split").await;
    assert_eq!(woodgrove.wait_for(1).await[0].to, vec![KIM.to_owned()]);
    assert_eq!(internet.wait_for(1).await[0].to, vec!["jo@fabrikam.com".to_owned()]);
}

#[tokio::test]
async fn connections_to_a_destination_are_reused() {
    let sink = Sink::start().await;
    let mut settings = test_settings();
    settings.queue.connection_idle = Duration::from_secs(30);
    route(&mut settings, "woodgrovebank.com", &[(10, sink.address)]);
    let relay = relay_with(settings, |_| {}).await;
    for n in 0..3 {
        submit(&relay, TED, &[KIM], &format!("message {n}")).await;
        sink.wait_for(n + 1).await;
    }
    assert_eq!(sink.connections.load(Ordering::SeqCst), 1, "three messages, one connection");
}

#[tokio::test]
async fn a_temporary_failure_is_retried_until_delivered() {
    let sink = Sink::start().await;
    *sink.data_failures.lock().unwrap() = (2, "451 4.3.0 try again later".to_owned());
    let mut settings = test_settings();
    route(&mut settings, "woodgrovebank.com", &[(10, sink.address)]);
    let relay = relay_with(settings, |_| {}).await;
    submit(&relay, TED, &[KIM], "persistent").await;
    let received = sink.wait_for(1).await;
    assert!(received[0].data.contains("Subject: persistent"));
    assert!(relay.mailbox(TED).is_empty(), "no DSN for a message that was delivered");
    let deferred = relay.relay.metrics.deliveries_deferred.load(Ordering::SeqCst);
    assert_eq!(deferred, 2);
}

#[tokio::test]
async fn a_permanent_failure_returns_a_dsn_to_the_sender() {
    let sink = Sink::start().await;
    sink.rcpt_replies.lock().unwrap().insert("gone@woodgrovebank.com".into(), "550 5.1.1 user unknown".into());
    let mut settings = test_settings();
    route(&mut settings, "woodgrovebank.com", &[(10, sink.address)]);
    let relay = relay_with(settings, |_| {}).await;
    submit(&relay, TED, &[KIM, "gone@woodgrovebank.com"], "half bounces").await;

    assert_eq!(sink.wait_for(1).await[0].to, vec![KIM.to_owned()]);
    let dsn = relay.wait_for_mail(TED, 1).await.remove(0);
    for expected in [
        "From: Mail Delivery System <MAILER-DAEMON@mail1.contoso.com>",
        "Content-Type: multipart/report; report-type=delivery-status",
        "Final-Recipient: rfc822; gone@woodgrovebank.com",
        "Action: failed",
        "Status: 5.1.1",
        "550 5.1.1 user unknown",
        "Subject: half bounces",
    ] {
        assert!(dsn.contains(expected), "{expected:?} not in the DSN:\n{dsn}");
    }
    assert!(!dsn.contains("Final-Recipient: rfc822; kim@"), "only the failed recipient is reported");
    eventually("an empty queue", || async { relay.relay.queue.is_empty().then_some(()) }).await;
}

#[tokio::test]
async fn an_undeliverable_message_expires_with_a_dsn_and_a_bounce_never_bounces() {
    let mut settings = test_settings();
    settings.queue.message_expiry = Duration::from_millis(600);
    route(&mut settings, "woodgrovebank.com", &[(10, dead_address())]);
    let relay = relay_with(settings, |_| {}).await;
    submit(&relay, TED, &[KIM], "never arrives").await;
    submit(&relay, "", &[KIM], "a bounce").await;

    let dsn = relay.wait_for_mail(TED, 1).await.remove(0);
    assert!(dsn.contains("Status: 4.4.7") && dsn.contains("Message expired after"), "{dsn}");
    assert!(dsn.contains("Connection refused") || dsn.contains("connect to"), "the reason is named:\n{dsn}");
    eventually("an empty queue", || async { relay.relay.queue.is_empty().then_some(()) }).await;
    assert_eq!(relay.relay.metrics.dsns_sent.load(Ordering::SeqCst), 1, "no DSN for the null sender");
    assert_eq!(relay.relay.metrics.recipients_failed.load(Ordering::SeqCst), 2, "both expired recipients count");
}

#[tokio::test]
async fn a_domain_without_a_route_fails_at_once() {
    let relay = relay_with(test_settings(), |config| {
        config.send_connectors = vec![send_connector("Woodgrove", &["woodgrovebank.com"])];
    })
    .await;
    submit(&relay, TED, &["jo@fabrikam.com"], "nowhere").await;
    let dsn = relay.wait_for_mail(TED, 1).await.remove(0);
    assert!(dsn.contains("Status: 5.4.4") && dsn.contains("No send connector covers fabrikam.com"), "{dsn}");
}

#[tokio::test]
async fn starttls_is_used_whenever_the_next_hop_offers_it() {
    let sink = Sink::start_with_tls().await;
    let mut settings = test_settings();
    route(&mut settings, "woodgrovebank.com", &[(10, sink.address)]);
    let relay = relay_with(settings, |_| {}).await;
    relay.enable_certificate("mail1.contoso.com");
    submit(&relay, TED, &[KIM], "encrypted").await;
    let received = sink.wait_for(1).await;
    assert!(received[0].tls, "delivered over TLS");
    assert_eq!(relay.relay.metrics.tls_outbound.load(Ordering::SeqCst), 1);
    let lines = eventually("the TLS lines in the send log", || async {
        let lines = query(&relay.relay.send_log, LogKind::Send, &LogQuery::default()).unwrap();
        lines.iter().any(|l| l.contains("250 2.0.0 queued")).then_some(lines)
    })
    .await
    .join("\n");
    for expected in [
        ",>,STARTTLS,",
        ",*,,Client certificate not requested",
        ",*,,Received certificate",
        ",*,mx.woodgrovebank.com,Certificate alternate names",
        ",*,,TLS negotiation succeeded",
    ] {
        assert!(lines.contains(expected), "{expected:?} not in:\n{lines}");
    }
}

#[tokio::test]
async fn without_pipelining_a_refused_recipient_fails_at_once() {
    let sink = Sink::start().await;
    sink.no_pipelining.store(true, Ordering::SeqCst);
    sink.rcpt_replies.lock().unwrap().insert(KIM.into(), "550 5.1.1 user unknown".into());
    let mut settings = test_settings();
    route(&mut settings, "woodgrovebank.com", &[(10, sink.address)]);
    let relay = relay_with(settings, |_| {}).await;
    submit(&relay, TED, &[KIM], "to nobody").await;
    let dsn = relay.wait_for_mail(TED, 1).await.remove(0);
    assert!(dsn.contains("Status: 5.1.1") && dsn.contains("550 5.1.1 user unknown"), "{dsn}");
    assert!(sink.messages().is_empty());
}
