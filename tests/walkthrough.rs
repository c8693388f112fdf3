//! The white paper's walkthrough, through the real binaries: Contoso and Woodgrove
//! Bank, each with its own database, controller and edge, configured with dsctl,
//! exchanging Domain Secured mail both ways; then the failure modes, refused the
//! right way.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use domainsec_e2e::*;

const TED: &str = "ted@contoso.com";
const PARTNER_DOMAIN: &str = "woodgrovebank.com";
const KIM: &str = "kim@woodgrovebank.com";

/// One organization's paper configuration: accepted domain, both secure lists naming
/// the partner, `Internet` (DNS, Domain Security, verbose), `Inet` (Domain Security,
/// TLS, anonymous + partners, verbose) and `FromHub` for its own servers.
async fn configure(org: &Organization, domain: &str, partner: &str, edge: &str, fqdn: &str, inet: u16, hub: u16) {
    org.ok(&["accepted-domain", "add", domain]).await;
    org.ok(&["edge", "add", edge, "--fqdn", fqdn]).await;
    org.ok(&[
        "transport-config",
        "set",
        "--tls-send-domain-secure-list",
        partner,
        "--tls-receive-domain-secure-list",
        partner,
    ])
    .await;
    org.ok(&[
        "send-connector",
        "new",
        "Internet",
        "--address-spaces",
        "*",
        "--dns-routing",
        "--source-edges",
        edge,
        "--domain-secure-enabled",
        "true",
        "--protocol-logging-level",
        "verbose",
    ])
    .await;
    let inet = format!("127.0.0.1:{inet}");
    org.new_inet_connector(edge, &inet).await;
    let hub = format!("127.0.0.1:{hub}");
    org.ok(&[
        "receive-connector",
        "new",
        "FromHub",
        "--edge",
        edge,
        "--bindings",
        &hub,
        "--remote-ip-ranges",
        "127.0.0.1",
        "--permission-groups",
        "exchange-servers",
        "--auth-mechanism",
        "tls",
    ])
    .await;
}

/// edge.toml routing `partner` to `mx` (no DNS in tests).
fn edge_toml(partner: &str, mx: &str, port: u16) -> String {
    format!(
        "[dns]\nstatic_only = true\n[dns.mx]\n\"{partner}\" = [{{ preference = 10, exchange = \"{mx}\" }}]\n\
         [dns.hosts]\n\"{mx}\" = [\"127.0.0.1:{port}\"]\n\n[queue]\nretry_initial = \"1s\"\nretry_max = \"2s\"\n"
    )
}

/// A PKCS#10 request made on the edge, signed by the shared CA, imported and enabled.
async fn certify(org: &Organization, pki: &Pki, edge: &str, subject: &str, name: &str) -> String {
    let request = org.dir.join(format!("{edge}.req"));
    let request_text = request.to_string_lossy().into_owned();
    org.ok(&[
        "cert",
        "new",
        "--edge",
        edge,
        "--subject-name",
        subject,
        "--domain-name",
        name,
        "--generate-request",
        "--path",
        &request_text,
        "--enable",
        "smtp",
    ])
    .await;
    let chain = pki.sign(&std::fs::read_to_string(&request).unwrap());
    let issued = org.dir.join(format!("{edge}.cer"));
    std::fs::write(&issued, &chain).unwrap();
    org.ok(&["cert", "import", "--edge", edge, "--path", &issued.to_string_lossy()]).await;
    chain
}

fn counter(counters: &serde_json::Value, name: &str) -> u64 {
    counters["counters"][name].as_u64().unwrap_or(0)
}

async fn counters_reach(org: &Organization, edge: &str, name: &str, value: u64) -> serde_json::Value {
    eventually(&format!("{name} = {value} on {edge}"), || async {
        let counters = org.json(&["counters", "--edge", edge]).await;
        (counter(&counters, name) >= value).then_some(counters)
    })
    .await
}

#[tokio::test]
async fn the_papers_walkthrough_between_two_organizations() {
    let root = tempfile::tempdir().unwrap();
    let pki = Pki::start().await;
    let (contoso_inet, contoso_hub, woodgrove_inet, woodgrove_hub) =
        (free_port(), free_port(), free_port(), free_port());

    // 1. Two organizations, each with its own database and controller, configured as the paper does.
    let contoso = Organization::start(root.path(), "contoso", "Contoso").await;
    let woodgrove = Organization::start(root.path(), "woodgrove", "Woodgrove Bank").await;
    configure(&contoso, "contoso.com", "woodgrovebank.com", "mail1", "mail1.contoso.com", contoso_inet, contoso_hub)
        .await;
    configure(
        &woodgrove,
        "woodgrovebank.com",
        "contoso.com",
        "mail",
        "mail.woodgrovebank.com",
        woodgrove_inet,
        woodgrove_hub,
    )
    .await;
    let config = contoso.ok(&["transport-config", "get"]).await;
    assert!(config.contains("TLSSendDomainSecureList     woodgrovebank.com"), "{config}");

    // 2. Edges subscribed (their keys made on the edge) and running on their synced configuration.
    let mail1 =
        contoso.start_edge("mail1", &edge_toml("woodgrovebank.com", "mail.woodgrovebank.com", woodgrove_inet)).await;
    let mail = woodgrove.start_edge("mail", &edge_toml("contoso.com", "mail1.contoso.com", contoso_inet)).await;
    contoso.wait_in_sync().await;
    woodgrove.wait_in_sync().await;
    // Probes need no certificate: health, readiness (configuration, listeners, spool) and metrics.
    let operations = contoso.operations_port("mail1");
    assert_eq!(http_get(operations, "/healthz").await, Some((200, "ok\n".to_owned())));
    let ready =
        eventually("mail1 ready", || async { http_get(operations, "/readyz").await.filter(|(code, _)| *code == 200) })
            .await;
    assert_eq!(ready.1, "ready\n");
    let (_, metrics) = http_get(operations, "/metrics").await.unwrap();
    assert!(metrics.contains("domainsec_domain_secured_messages_received_total 0"), "{metrics}");

    // 3. Certificates: requests on the edges, signed by the CA both trust, imported, enabled for SMTP.
    certify(&contoso, &pki, "mail1", "C=US, O=Contoso, CN=mail1.contoso.com", "mail1.contoso.com").await;
    let woodgrove_chain = certify(
        &woodgrove,
        &pki,
        "mail",
        "C=US, O=Woodgrove Bank, CN=mail.woodgrovebank.com",
        "mail.woodgrovebank.com",
    )
    .await;
    let root_file = root.path().join("ca.pem");
    std::fs::write(&root_file, &pki.root_pem).unwrap();
    let root_text = root_file.to_string_lossy().into_owned();
    contoso.ok(&["trusted-root", "add", "--path", &root_text]).await;
    woodgrove.ok(&["trusted-root", "add", "--path", &root_text]).await;
    contoso.wait_in_sync().await;
    woodgrove.wait_in_sync().await;
    let thumbprint =
        contoso.json(&["cert", "get", "--edge", "mail1"]).await[0]["thumbprint"].as_str().unwrap().to_owned();
    let verify = contoso.dsctl(&["cert", "verify", "--edge", "mail1", "--thumbprint", &thumbprint]).await;
    assert!(verify.success, "{}{}", verify.stdout, verify.stderr);
    assert!(verify.stdout.contains(&format!("CRL {} fetched", pki.crl_url)), "{}", verify.stdout);
    assert!(verify.stdout.contains("revocation: ok; not on any CRL"), "{}", verify.stdout);

    // 4. Contoso -> Woodgrove Bank: submitted to mail1, delivered over mutual TLS, marked.
    let hub: SocketAddr = format!("127.0.0.1:{contoso_hub}").parse().unwrap();
    let replies = smtp(
        hub,
        &["EHLO hub.contoso.com", &format!("MAIL FROM:<{TED}>"), &format!("RCPT TO:<{KIM}>"), "DATA", "QUIT"],
        "Subject: Q3 figures\r\n\r\nHello Kim.",
    )
    .await;
    assert!(replies[5].starts_with("250 2.6.0"), "{replies:?}");
    let mail_at_woodgrove =
        eventually("the message at Woodgrove Bank", || async { woodgrove.mailbox("mail", KIM).into_iter().next() })
            .await;
    assert!(mail_at_woodgrove.contains("X-DomainSec-Auth: partner; domain=contoso.com; cert="), "{mail_at_woodgrove}");
    assert!(mail_at_woodgrove.contains("with ESMTPS (TLSv1_3"), "{mail_at_woodgrove}");

    // 5. And back: Woodgrove Bank -> Contoso.
    let hub: SocketAddr = format!("127.0.0.1:{woodgrove_hub}").parse().unwrap();
    smtp(
        hub,
        &["EHLO hub.woodgrovebank.com", &format!("MAIL FROM:<{KIM}>"), &format!("RCPT TO:<{TED}>"), "DATA", "QUIT"],
        "Subject: Re: Q3 figures\r\n\r\nThanks.",
    )
    .await;
    let mail_at_contoso =
        eventually("the reply at Contoso", || async { contoso.mailbox("mail1", TED).into_iter().next() }).await;
    assert!(
        mail_at_contoso.contains("X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert="),
        "{mail_at_contoso}"
    );

    // 6. The paper's counters, reported by heartbeat, in dsctl.
    let counters = counters_reach(&contoso, "mail1", "domain_secured.messages_received", 1).await;
    assert_eq!(counter(&counters, "domain_secured.messages_sent"), 1);
    assert_eq!(counter(&counters, "domain_secured.outbound_session_failures"), 0);
    let fleet = contoso.ok(&["fleet", "status"]).await;
    assert!(fleet.lines().any(|l| l.starts_with("mail1") && l.contains(" 1/1/0 ")), "{fleet}");
    let log = contoso.ok(&["protocol-log", "--edge", "mail1", "--log", "send", "--limit", "100"]).await;
    for line in [",>,STARTTLS,", "Certificate subject", "Domain Secured: woodgrovebank.com"] {
        assert!(log.contains(line), "{line:?} not in the send log:\n{log}");
    }

    // 7. Inbound refusals at Contoso's Inet, from the outside: plain text from a secure domain.
    let inet: SocketAddr = format!("127.0.0.1:{contoso_inet}").parse().unwrap();
    let replies = smtp(inet, &["EHLO mail.woodgrovebank.com", &format!("MAIL FROM:<{KIM}>"), "QUIT"], "").await;
    assert!(replies[2].starts_with("530 5.7.10") && replies[2].contains("STARTTLS not used"), "{replies:?}");
    // ... and a forged mark from a non-partner is removed.
    let replies = smtp(
        inet,
        &["EHLO mail.fabrikam.com", "MAIL FROM:<jo@fabrikam.com>", &format!("RCPT TO:<{TED}>"), "DATA", "QUIT"],
        "X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=00\r\nSubject: forged\r\n\r\nhi",
    )
    .await;
    assert!(replies[5].starts_with("250"), "{replies:?}");
    let forged = eventually("the forged message", || async {
        contoso.mailbox("mail1", TED).into_iter().find(|m| m.contains("Subject: forged"))
    })
    .await;
    assert!(!forged.contains("X-DomainSec-Auth"), "{forged}");

    // 7b. `policy explain` says what the relay just did, and why.
    let explained = contoso.json(&["policy", "explain", "--edge", "mail1", "--from", KIM, "--to", TED]).await;
    let inbound = &explained["inbound"][0];
    assert_eq!(inbound["receive_connector"], "Inet", "{explained}");
    assert_eq!(inbound["domain_security"], "required", "{explained}");
    assert_eq!(inbound["entry"], "woodgrovebank.com", "{explained}");
    assert!(inbound["plain_text"]["reply"].as_str().unwrap().starts_with("530 5.7.1"), "{explained}");
    assert_eq!(inbound["with_partner_certificate"]["domain_secured"], true, "{explained}");
    assert_eq!(explained["outbound"]["route"], "local", "{explained}");
    let hub_binding = format!("127.0.0.1:{contoso_hub}");
    let explained = contoso
        .json(&[
            "policy",
            "explain",
            "--edge",
            "mail1",
            "--from",
            TED,
            "--to",
            KIM,
            "--client-ip",
            "127.0.0.1",
            "--binding",
            &hub_binding,
            "--config",
            "current",
        ])
        .await;
    assert_eq!(explained["inbound"][0]["receive_connector"], "FromHub", "{explained}");
    assert_eq!(explained["inbound"][0]["relay"], "organization-servers", "{explained}");
    let outbound = &explained["outbound"];
    assert_eq!(
        (outbound["send_connector"].as_str(), outbound["domain_security"].as_str()),
        (Some("Internet"), Some("required"))
    );
    assert_eq!(outbound["entry"], "woodgrovebank.com", "{explained}");
    assert!(outbound["certificate"]["names"].as_array().is_some_and(|names| !names.is_empty()), "{explained}");

    // 7c. `partner test`: Woodgrove Bank passes from mail1 before anything else is sent.
    let tested = contoso.json(&["partner", "test", "woodgrovebank.com", "--edge", "mail1"]).await;
    assert_eq!(tested["passed"], true, "{tested}");
    assert_eq!(tested["hosts"][0]["passed"], true, "{tested}");

    // 8. The CA's CRL server is down: a transient failure; the message waits, then goes.
    pki.crl_down.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let hub: SocketAddr = format!("127.0.0.1:{contoso_hub}").parse().unwrap();
    smtp(
        hub,
        &["EHLO hub.contoso.com", &format!("MAIL FROM:<{TED}>"), &format!("RCPT TO:<{KIM}>"), "DATA", "QUIT"],
        "Subject: during the outage\r\n\r\nwaits",
    )
    .await;
    let waiting = eventually("the transient refusal", || async {
        let queue = contoso.json(&["queue", "list", "--edge", "mail1"]).await;
        let message = queue.as_array()?.first()?.clone();
        message["last_error"].as_str()?.contains("revocation check failed").then_some(message)
    })
    .await;
    pki.crl_down.store(false, std::sync::atomic::Ordering::SeqCst);
    contoso.ok(&["queue", "retry", "--edge", "mail1", waiting["id"].as_str().unwrap()]).await;
    eventually("the message after the outage", || async { (woodgrove.mailbox("mail", KIM).len() == 2).then_some(()) })
        .await;

    // 9. Woodgrove Bank's certificate is revoked: Contoso refuses to deliver, keeps the
    //    message queued, counts the failure. (The CRL is valid 5 s: its cached copy lapses.)
    pki.revoke(&woodgrove_chain);
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let hub: SocketAddr = format!("127.0.0.1:{contoso_hub}").parse().unwrap();
    smtp(
        hub,
        &["EHLO hub.contoso.com", &format!("MAIL FROM:<{TED}>"), &format!("RCPT TO:<{KIM}>"), "DATA", "QUIT"],
        "Subject: Q4 plans\r\n\r\nnever in plain text",
    )
    .await;
    let queued = eventually("the refusal in the queue", || async {
        let queue = contoso.json(&["queue", "list", "--edge", "mail1"]).await;
        let message = queue.as_array()?.first()?.clone();
        message["last_error"].as_str()?.contains("revoked").then_some(message)
    })
    .await;
    assert!(
        queued["last_error"].as_str().unwrap().starts_with("451 4.7.5 ")
            && queued["last_error"].as_str().unwrap().contains("Server certificate not verified: certificate revoked"),
        "{queued}"
    );
    let counters = counters_reach(&contoso, "mail1", "domain_secured.failure_reason.revoked", 1).await;
    assert!(counter(&counters, "domain_secured.failure_reason.revocation-unavailable") >= 1, "{counters}");
    assert_eq!(woodgrove.mailbox("mail", KIM).len(), 2, "nothing downgraded: the revoked partner got nothing");
    // 10. The fleet-wide partner report: traffic, failures by reason, certificates seen.
    let report = contoso.json(&["partner", "report", "--since", "1h"]).await;
    let woodgrove_row = report["partners"].as_array().unwrap().iter().find(|p| p["partner"] == PARTNER_DOMAIN).cloned();
    let woodgrove_row = woodgrove_row.unwrap_or_else(|| panic!("no row for the partner: {report}"));
    assert!(woodgrove_row["sent"].as_u64().unwrap() >= 2, "{woodgrove_row}");
    assert!(woodgrove_row["received"].as_u64().unwrap() >= 1, "{woodgrove_row}");
    assert!(woodgrove_row["reasons"]["outbound.revoked"].as_u64().unwrap() >= 1, "{woodgrove_row}");
    // The test CA issues for 30 days: inside the default 30-day watch, outside a 1-day one.
    let seen = &woodgrove_row["certificates"][0];
    assert!(seen["subject"].as_str().unwrap().contains("woodgrovebank"), "{woodgrove_row}");
    assert_eq!(seen["expiring"], true, "expires within 30 days: {seen}");
    assert!(!report["edge_certificates"].as_array().unwrap().is_empty(), "{report}");
    let report = contoso.json(&["partner", "report", "--expiring-within", "1d"]).await;
    let later = report["partners"].as_array().unwrap().iter().find(|p| p["partner"] == PARTNER_DOMAIN).unwrap();
    assert_eq!(later["certificates"][0]["expiring"], false, "not within a day: {later}");
    assert!(report["edge_certificates"].as_array().unwrap().iter().all(|c| c["expiring"] == false), "{report}");
    // fleet status flags the edge's own SMTP certificate (30 days from the test CA).
    let fleet = contoso.json(&["fleet", "status"]).await;
    let mail1_row = fleet.as_array().unwrap().iter().find(|e| e["name"] == "mail1").unwrap();
    assert_eq!(mail1_row["certificate_expiring"], true, "{mail1_row}");
    assert!(!mail1_row["certificate_not_after"].as_str().unwrap().is_empty(), "{mail1_row}");
    // The same as RFC 8460 aggregate reports (one per partner domain).
    let reports = contoso.json(&["partner", "report", "--format", "tlsrpt", "--domain", PARTNER_DOMAIN]).await;
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tlsrpt-aggregate-report.schema.json");
    for report in reports.as_array().unwrap() {
        match domainsec_e2e::validate_json_schema(&schema, report) {
            Some(verdict) => assert_eq!(verdict, Ok(()), "RFC 8460 schema: {report}"),
            None => {
                eprintln!("python3 with jsonschema not installed: the TLS-RPT report is checked by its fields only")
            }
        }
    }
    let tlsrpt = &reports[0];
    for field in ["organization-name", "contact-info", "report-id"] {
        assert!(tlsrpt[field].is_string(), "{field}: {tlsrpt}");
    }
    for field in ["start-datetime", "end-datetime"] {
        let value = tlsrpt["date-range"][field].as_str().unwrap();
        assert!(humantime::parse_rfc3339(value).is_ok(), "{field} {value:?}");
    }
    let policy = &tlsrpt["policies"][0];
    assert!(
        ["tlsa", "sts", "no-policy-found"].contains(&policy["policy"]["policy-type"].as_str().unwrap()),
        "{policy}"
    );
    assert_eq!(policy["policy"]["policy-domain"], PARTNER_DOMAIN);
    assert!(policy["summary"]["total-successful-session-count"].as_u64().unwrap() >= 1, "{policy}");
    assert!(policy["summary"]["total-failure-session-count"].as_u64().unwrap() >= 1, "{policy}");
    let details = policy["failure-details"].as_array().unwrap();
    assert!(
        details
            .iter()
            .any(|d| d["result-type"] == "validation-failure" && d["failed-session-count"].as_u64() >= Some(1)),
        "{policy}"
    );

    // ... and `partner test` names the failing step, with the line a delivery logs.
    let run = contoso.dsctl(&["-o", "json", "partner", "test", "woodgrovebank.com", "--edge", "mail1"]).await;
    assert!(!run.success, "a revoked partner fails the test: {}", run.stdout);
    let tested: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(tested["hosts"][0]["failure"], "revoked", "{tested}");
    assert!(tested["reply"].as_str().unwrap().starts_with("451 4.7.5 "), "{tested}");
    assert!(run.stderr.contains("woodgrovebank.com would fail Domain Security"), "{}", run.stderr);

    mail1.kill().await;
    mail.kill().await;
    contoso.stop().await;
    woodgrove.stop().await;
}
