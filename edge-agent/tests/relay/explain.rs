//! `policy explain` agrees with the relay: for each case, a real SMTP session
//! against the running relay, and the explanation of the same envelope from the
//! same configuration; the reply to `MAIL FROM` / `RCPT TO` must be the one the
//! explanation predicts (refused at which command, with which reply, or accepted).

use std::net::SocketAddr;

use domainsec_model::PermissionGroup;
use edge::{
    certificates::CertificateStore,
    explain::{self, Outcome, Question},
};

use super::{
    domain_security::{organization, settings_routing},
    pki::*,
    support::*,
};

/// How the test client connects.
#[derive(Clone, Copy, Debug)]
enum Presenting {
    /// No STARTTLS.
    PlainText,
    /// STARTTLS with Woodgrove Bank's certificate (valid for the partner).
    PartnerCertificate,
}

struct Case {
    connector: &'static str,
    from: &'static str,
    to: &'static str,
    presenting: Presenting,
    /// What the relay must do (and the explanation must say).
    expected: Expected,
}

#[derive(Debug, PartialEq)]
enum Expected {
    Accepted { domain_secured: bool },
    RefusedAt(&'static str, u16),
}

#[tokio::test]
async fn explain_agrees_with_the_relay_on_every_case() {
    let pki = TestPki::new("Public").await;
    let mut config = organization("contoso.com", "mail1.contoso.com", "woodgrovebank.com", &pki.root_der);
    config
        .transport
        .tls_receive_domain_secure_list
        .push(domainsec_model::DomainPattern::parse("*.fabrikam.com").unwrap());
    // A connector for partners only: without Domain Security nobody may submit.
    let mut partners_only = receive_connector("PartnersOnly", free_port());
    partners_only.domain_secure_enabled = true;
    partners_only.permission_groups = vec![PermissionGroup::Partners];
    config.receive_connectors.push(partners_only);
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let relay = TestRelay::start(config, settings_routing("woodgrovebank.com", unused)).await;
    install(&relay, &pki.issue(LeafSpec::new(&["mail1.contoso.com"])), &[&pki.root_der]);
    let woodgrove = pki.issue(LeafSpec::new(&["mail.woodgrovebank.com"]));

    use Expected::*;
    use Presenting::*;
    let cases = [
        // The paper's inbound rule on Inet (anonymous-users + partners, Domain Security on).
        Case {
            connector: "Inet",
            from: "kim@woodgrovebank.com",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: RefusedAt("MAIL", 530),
        },
        Case {
            connector: "Inet",
            from: "kim@woodgrovebank.com",
            to: "ted@contoso.com",
            presenting: PartnerCertificate,
            expected: Accepted { domain_secured: true },
        },
        Case {
            connector: "Inet",
            from: "kim@WoodGroveBank.COM",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: RefusedAt("MAIL", 530),
        },
        // A trailing dot does not parse as a path: the syntax reply comes before any rule.
        Case {
            connector: "Inet",
            from: "kim@woodgrovebank.com.",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: RefusedAt("MAIL", 501),
        },
        Case {
            connector: "Inet",
            from: "kim@woodgrovebank..com",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: RefusedAt("MAIL", 501),
        },
        // A path that parses but a domain that is not valid, under a list entry: refused.
        Case {
            connector: "Inet",
            from: "jo@xn--55555555.fabrikam.com",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: RefusedAt("MAIL", 550),
        },
        Case {
            connector: "Inet",
            from: "kim@mail.woodgrovebank.com",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: Accepted { domain_secured: false },
        },
        Case {
            connector: "Inet",
            from: "jo@r7.fabrikam.com",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: RefusedAt("MAIL", 530),
        },
        Case {
            connector: "Inet",
            from: "jo@example.org",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: Accepted { domain_secured: false },
        },
        Case {
            connector: "Inet",
            from: "",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: Accepted { domain_secured: false },
        },
        // No open relay, whoever the sender.
        Case {
            connector: "Inet",
            from: "jo@example.org",
            to: "bob@example.net",
            presenting: PlainText,
            expected: RefusedAt("RCPT", 550),
        },
        Case {
            connector: "Inet",
            from: "kim@woodgrovebank.com",
            to: "bob@example.net",
            presenting: PartnerCertificate,
            expected: RefusedAt("RCPT", 550),
        },
        // The organization's servers relay anywhere; Domain Security is off there.
        Case {
            connector: "FromHub",
            from: "ted@contoso.com",
            to: "bob@example.net",
            presenting: PlainText,
            expected: Accepted { domain_secured: false },
        },
        Case {
            connector: "FromHub",
            from: "kim@woodgrovebank.com",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: Accepted { domain_secured: false },
        },
        // Partners only: an unlisted sender has no permission; a verified partner has.
        Case {
            connector: "PartnersOnly",
            from: "jo@example.org",
            to: "ted@contoso.com",
            presenting: PlainText,
            expected: RefusedAt("MAIL", 530),
        },
        Case {
            connector: "PartnersOnly",
            from: "kim@woodgrovebank.com",
            to: "ted@contoso.com",
            presenting: PartnerCertificate,
            expected: Accepted { domain_secured: true },
        },
    ];

    let config = relay.config.borrow().clone().unwrap();
    let certificates = CertificateStore::new(relay.dir.path()).smtp_certificates();
    let temporary = relay.relay.security.settings.temporary_refusals;
    for (number, case) in cases.iter().enumerate() {
        let binding = relay.address(case.connector);
        // What the explanation says.
        let question = Question {
            from: (!case.from.is_empty()).then(|| case.from.to_owned()),
            to: case.to.to_owned(),
            client: binding.ip(),
            binding: Some(binding),
        };
        let explanation = explain::explain(&config, &certificates, temporary, &question);
        let [inbound] = explanation.inbound.as_slice() else { panic!("case {number}: one connector expected") };
        assert_eq!(inbound.connector, case.connector, "case {number}");
        let predicted = match case.presenting {
            PlainText => &inbound.plain_text,
            PartnerCertificate => &inbound.with_partner_certificate,
        };
        // What the relay does.
        let received_before = relay.relay.security.counters.counts().messages_received;
        let mut observed = session(binding, case, &woodgrove).await;
        if let Accepted { domain_secured } = &mut observed {
            *domain_secured = relay.relay.security.counters.counts().messages_received > received_before;
            if case.to == "ted@contoso.com" {
                let subject = case.subject();
                let copy = eventually("the local copy", || {
                    let found = relay.mailbox("ted@contoso.com").into_iter().find(|m| m.contains(&subject));
                    async move { found }
                })
                .await;
                let marked = copy.contains("X-DomainSec-Auth: partner;");
                assert_eq!(marked, *domain_secured, "case {number}: the mark and the counter agree:\n{copy}");
            }
        }
        assert_eq!(
            observed, case.expected,
            "case {number}: the relay, for {:?} → {:?} ({:?})",
            case.from, case.to, case.presenting
        );
        match (predicted, &observed) {
            (Outcome::Accepted { domain_secured }, Accepted { domain_secured: observed }) => {
                assert_eq!(domain_secured, observed, "case {number}: Domain Secured");
            }
            (Outcome::Refused { stage, reply }, RefusedAt(observed_stage, code)) => {
                assert_eq!(stage, observed_stage, "case {number}");
                assert!(reply.starts_with(&code.to_string()), "case {number}: explained {reply:?}, relay said {code}");
            }
            (predicted, observed) => panic!("case {number}: explained {predicted:?}, relay did {observed:?}"),
        }
    }
}

/// One SMTP session up to `RCPT TO` (then `RSET`), as the case says.
async fn session(binding: SocketAddr, case: &Case, partner: &Leaf) -> Expected {
    let mut client = Client::connect(binding).await;
    client.command("EHLO client.example", 250).await;
    match case.presenting {
        Presenting::PlainText => envelope(&mut client, case).await,
        Presenting::PartnerCertificate => {
            let mut client = client.start_tls_with(Some((partner.der.clone(), partner.key_der.clone()))).await;
            client.command("EHLO client.example", 250).await;
            envelope(&mut client, case).await
        }
    }
}

async fn envelope<S>(client: &mut Client<S>, case: &Case) -> Expected
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    client.send(&format!("MAIL FROM:<{}>", case.from)).await;
    let mail = client.reply().await;
    if !mail.starts_with("250") {
        return Expected::RefusedAt("MAIL", code(&mail));
    }
    client.send(&format!("RCPT TO:<{}>", case.to)).await;
    let rcpt = client.reply().await;
    if !rcpt.starts_with("250") {
        return Expected::RefusedAt("RCPT", code(&rcpt));
    }
    client.command("DATA", 354).await;
    client.write(format!("Subject: {}\r\n\r\nbody\r\n.\r\n", case.subject()).as_bytes()).await;
    let reply = client.reply().await;
    assert!(reply.starts_with("250"), "{reply}");
    // Domain Secured or not: the mark on the delivered copy (local recipients), else
    // the relay's count of Domain-Secured messages received.
    Expected::Accepted { domain_secured: false }
}

impl Case {
    fn subject(&self) -> String {
        format!("explain case {} {} {:?}", self.connector, self.from, self.presenting)
    }
}

fn code(reply: &str) -> u16 {
    reply.get(..3).and_then(|code| code.parse().ok()).unwrap_or(0)
}
