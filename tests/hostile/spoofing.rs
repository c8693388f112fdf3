//! B. Spoofing a secure domain: `MAIL FROM` a domain on `TLSReceiveDomainSecureList`
//! (`woodgrovebank.com`, `*.fabrikam.com`) in plain text, in every spelling that
//! means, or might be taken to mean, a listed domain. Each must be refused — never
//! 250 — and leave no transaction behind (`RCPT` and `DATA` then get 503).

use std::sync::Arc;

use anyhow::{Result, ensure};

use crate::{
    attacker::{Reply, Session},
    fixture::{Fixture, MALLORY, POSTMASTER},
    suite::{Case, Outcome},
};

/// The cases of group B.
pub fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = SENDERS
        .iter()
        .map(|sender| Case::new(sender.id, sender.name, move |fixture| refused_sender(fixture, sender)))
        .collect();
    cases.extend([
        Case::new("B10", "the null sender MAIL FROM:<> is allowed (250) and takes a recipient", null_sender),
        Case::new("B11", "RSET after a refused MAIL, then the listed domain again: refused again", rset_and_retry),
        Case::new("B12", "a listed domain over TLS without a client certificate: 550 5.7.1", tls_without_certificate),
    ]);
    cases
}

/// What the edge must answer to one spoofed `MAIL FROM`.
enum Expect {
    /// Exactly this code and enhanced status.
    Exactly(u16, &'static str),
    /// A syntax refusal (501, any enhanced status) or the Domain Security one (530 5.7.10).
    SyntaxOrSecure,
    /// Any 5xx, never 2xx.
    Refused,
}

struct Sender {
    id: &'static str,
    name: &'static str,
    /// The `MAIL FROM:` command lines to try, each in its own session.
    commands: &'static [&'static str],
    expect: Expect,
}

async fn refused_sender(fixture: Arc<Fixture>, sender: &'static Sender) -> Outcome {
    let mut problems = Vec::new();
    for command in sender.commands {
        let mut session = Session::plain(fixture.inet).await?;
        let reply = session.command(command).await?;
        let ok = match sender.expect {
            Expect::Exactly(code, status) => reply.is(code, status),
            Expect::SyntaxOrSecure => reply.code == 501 || reply.is(530, "5.7.10"),
            Expect::Refused => (500..600).contains(&reply.code),
        };
        if !ok {
            problems.push(format!("{command:?} answered {reply}, expected {}", sender.expect));
        } else if let Err(error) = no_transaction(&mut session).await {
            problems.push(format!("{command:?}: {error:#}"));
        }
        session.quit().await;
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

async fn null_sender(fixture: Arc<Fixture>) -> Outcome {
    let mut session = Session::plain(fixture.inet).await?;
    let reply = session.command("MAIL FROM:<>").await?;
    ensure!(reply.is(250, "2.1.0"), "MAIL FROM:<> answered {reply}, expected 250 2.1.0");
    session.expect(&format!("RCPT TO:<{POSTMASTER}>"), 250).await?;
    session.expect("RSET", 250).await?;
    session.quit().await;
    Ok(())
}

async fn rset_and_retry(fixture: Arc<Fixture>) -> Outcome {
    let mut session = Session::plain(fixture.inet).await?;
    let first = session.command("MAIL FROM:<ceo@woodgrovebank.com>").await?;
    ensure!(first.is(530, "5.7.10"), "first MAIL answered {first}\n{}", session.transcript());
    session.expect("RSET", 250).await?;
    let again = session.command("MAIL FROM:<ceo@woodgrovebank.com>").await?;
    ensure!(again.is(530, "5.7.10"), "MAIL after RSET answered {again}\n{}", session.transcript());
    no_transaction(&mut session).await?;
    // The session is not poisoned for an unlisted sender either.
    session.expect("RSET", 250).await?;
    session.expect(&format!("MAIL FROM:<{MALLORY}>"), 250).await?;
    session.quit().await;
    Ok(())
}

async fn tls_without_certificate(fixture: Arc<Fixture>) -> Outcome {
    let mut session = Session::tls(fixture.inet, None).await?;
    for sender in ["ceo@woodgrovebank.com", "ceo@x.fabrikam.com"] {
        let reply = session.command(&format!("MAIL FROM:<{sender}>")).await?;
        ensure!(reply.is(550, "5.7.1"), "{sender} over TLS answered {reply}, expected 550 5.7.1");
        no_transaction(&mut session).await?;
    }
    session.quit().await;
    Ok(())
}

/// After a refused `MAIL`, `RCPT` and `DATA` get 503: nothing can be queued.
async fn no_transaction(session: &mut Session) -> Result<()> {
    let rcpt: Reply = session.command(&format!("RCPT TO:<{POSTMASTER}>")).await?;
    ensure!(rcpt.code == 503, "RCPT after the refusal answered {rcpt}, expected 503");
    let data = session.command("DATA").await?;
    ensure!(data.code == 503, "DATA after the refusal answered {data}, expected 503");
    Ok(())
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exactly(code, status) => write!(f, "{code} {status}"),
            Self::SyntaxOrSecure => f.write_str("501 or 530 5.7.10 (never 250)"),
            Self::Refused => f.write_str("a 5xx refusal (never 250)"),
        }
    }
}

static SENDERS: &[Sender] = &[
    Sender {
        id: "B1",
        name: "ceo@woodgrovebank.com in plain text (also with a space after the colon)",
        commands: &["MAIL FROM:<ceo@woodgrovebank.com>", "mail from: <ceo@woodgrovebank.com>"],
        expect: Expect::Exactly(530, "5.7.10"),
    },
    Sender {
        id: "B2",
        name: "mixed case ceo@WoodGroveBank.COM",
        commands: &["MAIL FROM:<ceo@WoodGroveBank.COM>"],
        expect: Expect::Exactly(530, "5.7.10"),
    },
    Sender {
        id: "B3",
        name: "trailing dot ceo@woodgrovebank.com. (501 or 530, never 250)",
        commands: &["MAIL FROM:<ceo@woodgrovebank.com.>", "MAIL FROM:<ceo@x.fabrikam.com.>"],
        expect: Expect::SyntaxOrSecure,
    },
    Sender {
        id: "B4",
        name: "Unicode and IDNA spellings that normalise to a listed domain (no SMTPUTF8 offered)",
        commands: &[
            "MAIL FROM:<ceo@woodgrovebank\u{3002}com>",
            "MAIL FROM:<ceo@\u{ff57}\u{ff4f}\u{ff4f}\u{ff44}\u{ff47}\u{ff52}\u{ff4f}\u{ff56}\u{ff45}\u{ff42}\u{ff41}\u{ff4e}\u{ff4b}.com>",
            "MAIL FROM:<ceo@WOODGROVEBANK.\u{24b8}om>",
            "MAIL FROM:<ceo@x.fabrikam\u{ff0e}com>",
            "MAIL FROM:<ceo@xn--woodgrovebank-.com>",
        ],
        expect: Expect::SyntaxOrSecure,
    },
    Sender {
        id: "B5",
        name: "a subdomain under the `*.` entry: ceo@x.fabrikam.com",
        commands: &["MAIL FROM:<ceo@x.fabrikam.com>", "MAIL FROM:<ceo@X.FabriKam.Com>"],
        expect: Expect::Exactly(530, "5.7.10"),
    },
    Sender {
        id: "B6",
        name: "two levels under the `*.` entry: ceo@a.b.fabrikam.com",
        commands: &["MAIL FROM:<ceo@a.b.fabrikam.com>"],
        expect: Expect::Exactly(530, "5.7.10"),
    },
    Sender {
        id: "B7",
        name: "an invalid punycode label under the `*.` entry: ceo@xn--55555555.fabrikam.com",
        commands: &["MAIL FROM:<ceo@xn--55555555.fabrikam.com>", "MAIL FROM:<ceo@XN--55555555.fabrikam.com>"],
        expect: Expect::Refused,
    },
    Sender {
        id: "B8",
        name: "quoted local part \"ceo\"@woodgrovebank.com",
        commands: &["MAIL FROM:<\"ceo\"@woodgrovebank.com>", "MAIL FROM:<\"ceo@x\"@woodgrovebank.com>"],
        expect: Expect::Exactly(530, "5.7.10"),
    },
    Sender {
        id: "B9",
        name: "source route <@relay.example:ceo@woodgrovebank.com>",
        commands: &[
            "MAIL FROM:<@relay.example:ceo@woodgrovebank.com>",
            "MAIL FROM:<@a.example,@b.example:ceo@x.fabrikam.com>",
        ],
        expect: Expect::Exactly(530, "5.7.10"),
    },
];
