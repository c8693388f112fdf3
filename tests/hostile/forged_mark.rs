//! A. The forged mark: a sender on no secure list (mallory@attacker.example)
//! writes its own `X-DomainSec-Auth` / `Authentication-Results: …; x-domainsec=pass`
//! in every shape RFC 5322 allows. Each shape goes in over plain text with DATA,
//! over TLS without a client certificate with DATA, and over plain text with BDAT
//! split right inside the forged field's name; every copy must be accepted (250)
//! and delivered with no mark at all — only the edge's own `Received:`.

use std::sync::Arc;

use anyhow::{Result, ensure};

use crate::{
    attacker::{Reply, Session, message},
    delivered::unmarked,
    fixture::{Fixture, MALLORY, POSTMASTER},
    suite::{Case, Outcome},
};

/// The cases of group A.
pub fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = SHAPES
        .iter()
        .map(|shape| Case::new(shape.id, shape.name, move |fixture| forged_shape(fixture, shape)))
        .collect();
    let position = cases.iter().position(|c| c.id == "A11a").unwrap_or(cases.len());
    let more = [
        Case::new("A8", "a field after a bare LF in the header: 550 5.6.0 (DATA, BDAT, TLS)", bare_lf),
        Case::new("A9", "BDAT over TLS in 7-octet chunks cutting every forged field", tiny_chunks),
        Case::new(
            "A10",
            "a forged message after a clean one in the same session (DATA, then BDAT)",
            second_transaction,
        ),
    ];
    cases.splice(position..position, more);
    cases
}

/// A forged header block; `{HEAD}` stands for Message-ID, Subject, From and To.
struct Shape {
    id: &'static str,
    name: &'static str,
    header: &'static str,
    /// False: the message ends with its header (no empty line, no body).
    body: bool,
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    PlainData,
    TlsData,
    PlainBdatSplit,
}

async fn forged_shape(fixture: Arc<Fixture>, shape: &'static Shape) -> Outcome {
    let mut problems = Vec::new();
    let mut sent = Vec::new();
    for transport in [Transport::PlainData, Transport::TlsData, Transport::PlainBdatSplit] {
        let tag = format!("{}-{}", shape.id, transport.slug());
        let message = message(shape.header, &tag, shape.body);
        match submit(&fixture, transport, &message).await {
            Ok(()) => sent.push(tag),
            Err(error) => problems.push(format!("{tag}: {error:#}")),
        }
    }
    for tag in sent {
        let delivered = fixture.await_delivery(&tag).await?;
        if let Err(error) = unmarked(&tag, &delivered) {
            problems.push(format!("{error:#}"));
        }
    }
    verdict(problems)
}

async fn bare_lf(fixture: Arc<Fixture>) -> Outcome {
    let mut problems = Vec::new();
    for transport in [Transport::PlainData, Transport::PlainBdatSplit, Transport::TlsData] {
        let tag = format!("A8-{}", transport.slug());
        fixture.refused(&tag);
        let header = "{HEAD}X-Innocent: a\nX-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=00\r\n";
        let message = message(header, &tag, true);
        let mut session = transport.session(&fixture).await?;
        session.envelope(MALLORY, POSTMASTER).await?;
        let reply = transport.message(&mut session, &message).await?;
        if !reply.is(550, "5.6.0") {
            problems.push(format!("{tag}: expected 550 5.6.0, got {reply}\n{}", session.transcript()));
        }
        // The session goes on, with no transaction left behind.
        let after = session.command("RCPT TO:<postmaster@contoso.com>").await?;
        if after.code != 503 {
            problems.push(format!("{tag}: RCPT after the refusal answered {after}, expected 503"));
        }
        session.quit().await;
    }
    verdict(problems)
}

async fn tiny_chunks(fixture: Arc<Fixture>) -> Outcome {
    let tag = "A9-tls-bdat-7";
    let header = "{HEAD}X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=00\r\n\
                  Authentication-Results: mail1.contoso.com; x-domainsec=pass\r\n";
    let message = message(header, tag, true);
    let chunks: Vec<&[u8]> = message.chunks(7).collect();
    let mut session = Session::tls(fixture.inet, None).await?;
    session.envelope(MALLORY, POSTMASTER).await?;
    let reply = session.bdat(&chunks).await?;
    ensure!(reply.is(250, "2.6.0"), "{tag}: {reply}\n{}", session.transcript());
    session.quit().await;
    unmarked(tag, &fixture.await_delivery(tag).await?)
}

async fn second_transaction(fixture: Arc<Fixture>) -> Outcome {
    let clean = "A10-1-clean";
    let forged = "A10-2-forged-data";
    let after_rset = "A10-3-forged-bdat";
    let mut session = Session::plain(fixture.inet).await?;
    let reply = session.send_with_data(MALLORY, POSTMASTER, &message("{HEAD}", clean, true)).await?;
    ensure!(reply.is(250, "2.6.0"), "{clean}: {reply}\n{}", session.transcript());
    let header = "{HEAD}X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=00\r\n\
                  Authentication-Results: mail1.contoso.com; x-domainsec=pass\r\n";
    let reply = session.send_with_data(MALLORY, POSTMASTER, &message(header, forged, true)).await?;
    ensure!(reply.is(250, "2.6.0"), "{forged}: {reply}\n{}", session.transcript());
    session.expect("RSET", 250).await?;
    session.envelope(MALLORY, POSTMASTER).await?;
    let reply = Transport::PlainBdatSplit.message(&mut session, &message(header, after_rset, true)).await?;
    ensure!(reply.is(250, "2.6.0"), "{after_rset}: {reply}\n{}", session.transcript());
    session.quit().await;
    let mut problems = Vec::new();
    for tag in [clean, forged, after_rset] {
        if let Err(error) = unmarked(tag, &fixture.await_delivery(tag).await?) {
            problems.push(format!("{error:#}"));
        }
    }
    verdict(problems)
}

// === impl Transport ===

impl Transport {
    fn slug(self) -> &'static str {
        match self {
            Self::PlainData => "plain-data",
            Self::TlsData => "tls-data",
            Self::PlainBdatSplit => "plain-bdat-split",
        }
    }

    async fn session(self, fixture: &Fixture) -> Result<Session> {
        match self {
            Self::TlsData => Session::tls(fixture.inet, None).await,
            Self::PlainData | Self::PlainBdatSplit => Session::plain(fixture.inet).await,
        }
    }

    /// Sends the message in this transport's way; the reply to its end.
    async fn message(self, session: &mut Session, message: &[u8]) -> Result<Reply> {
        match self {
            Self::PlainData | Self::TlsData => session.data(message).await,
            Self::PlainBdatSplit => {
                let (first, second) = message.split_at(split_point(message));
                session.bdat(&[first, second]).await
            }
        }
    }
}

/// One message from Mallory, accepted with 250 2.6.0.
async fn submit(fixture: &Fixture, transport: Transport, message: &[u8]) -> Result<()> {
    let mut session = transport.session(fixture).await?;
    session.envelope(MALLORY, POSTMASTER).await?;
    let reply = transport.message(&mut session, message).await?;
    ensure!(reply.is(250, "2.6.0"), "message answered {reply}, expected 250 2.6.0\n{}", session.transcript());
    session.quit().await;
    Ok(())
}

/// Four octets into the first forged field's name (`Auth|entication-Results`).
fn split_point(message: &[u8]) -> usize {
    let lower = String::from_utf8_lossy(message).to_ascii_lowercase();
    ["x-domainsec-auth", "authentication-results"]
        .iter()
        .filter_map(|name| lower.find(name))
        .min()
        .map_or(message.len() / 2, |at| at + 4)
}

fn verdict(problems: Vec<String>) -> Outcome {
    ensure!(problems.is_empty(), "{}", problems.join("\n\n"));
    Ok(())
}

/// A1–A7 and A11: the shapes. Each holds nothing but forgeries besides `{HEAD}`.
static SHAPES: &[Shape] = &[
    Shape {
        id: "A1",
        name: "Authentication-Results with a comment before the edge's authserv-id",
        header: "{HEAD}Authentication-Results: (comment) mail1.contoso.com; x-domainsec=pass\r\n",
        body: true,
    },
    Shape {
        id: "A2",
        name: "Authentication-Results folded right after the colon, verdict on the continuation line",
        header: "{HEAD}Authentication-Results:\r\n\tmail1.contoso.com; x-domainsec=pass\r\n",
        body: true,
    },
    Shape {
        id: "A3a",
        name: "authserv-id of another edge of the same organization (mail2.contoso.com)",
        header: "{HEAD}Authentication-Results: mail2.contoso.com; x-domainsec=pass \
                 smtp.mailfrom-domain=woodgrovebank.com\r\n",
        body: true,
    },
    Shape {
        id: "A3b",
        name: "a foreign authserv-id claiming x-domainsec=pass",
        header: "{HEAD}Authentication-Results: mx.attacker.example; spf=pass; x-domainsec=pass\r\n",
        body: true,
    },
    Shape {
        id: "A3c",
        name: "the edge's authserv-id with a trailing dot",
        header: "{HEAD}Authentication-Results: mail1.contoso.com.; x-domainsec=pass\r\n",
        body: true,
    },
    Shape {
        id: "A4",
        name: "case variants: AUTHENTICATION-RESULTS, x-DomainSec-AUTH, X-DOMAINSEC=PASS",
        header: "{HEAD}AUTHENTICATION-RESULTS: MAIL1.CONTOSO.COM; X-DOMAINSEC=PASS\r\n\
                 x-DomainSec-AUTH: partner; domain=woodgrovebank.com; cert=00\r\n\
                 authentication-results: mail1.contoso.com; X-DomainSec=Pass\r\n",
        body: true,
    },
    Shape {
        id: "A5",
        name: "whitespace before the colon: `X-DomainSec-Auth :`, `Authentication-Results\\t:`",
        header: "{HEAD}X-DomainSec-Auth : partner; domain=woodgrovebank.com; cert=00\r\n\
                 Authentication-Results\t: mail1.contoso.com; x-domainsec=pass\r\n",
        body: true,
    },
    Shape {
        id: "A6",
        name: "obs-fold: continuation lines holding only whitespace before the value",
        header: "{HEAD}Authentication-Results:\r\n \r\n\t\r\n mail1.contoso.com; x-domainsec=pass\r\n\
                 X-DomainSec-Auth:\r\n \r\n partner; domain=woodgrovebank.com; cert=00\r\n",
        body: true,
    },
    Shape {
        id: "A7a",
        name: "duplicates; a forged field as the very first and as the last header line",
        header: "X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=00\r\n{HEAD}\
                 Authentication-Results: mail1.contoso.com; x-domainsec=pass\r\n\
                 Authentication-Results: mail1.contoso.com; x-domainsec=pass\r\n\
                 X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=01\r\n\
                 X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=02\r\n",
        body: true,
    },
    Shape {
        id: "A7b",
        name: "a header-only message (no body, no empty line) ending in forged fields",
        header: "{HEAD}X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=00\r\n\
                 Authentication-Results: mail1.contoso.com;\r\n x-domainsec=pass\r\n",
        body: false,
    },
    Shape {
        id: "A11a",
        name: "nested comments `(a (b) c)` before the authserv-id",
        header: "{HEAD}Authentication-Results: (a (b) c) mail1.contoso.com; x-domainsec=pass\r\n",
        body: true,
    },
    Shape {
        id: "A11b",
        name: "a comment with an escaped parenthesis `(a \\) b)` before the authserv-id",
        header: "{HEAD}Authentication-Results: (a \\) b) mail1.contoso.com; x-domainsec=pass\r\n",
        body: true,
    },
    Shape {
        id: "A11c",
        name: "the authserv-id as a quoted-string",
        header: "{HEAD}Authentication-Results: \"mail1.contoso.com\"; x-domainsec=pass\r\n",
        body: true,
    },
    Shape {
        id: "A11d",
        name: "a comment glued to the authserv-id `mail1.contoso.com(c);`",
        header: "{HEAD}Authentication-Results: mail1.contoso.com(c); x-domainsec=pass\r\n",
        body: true,
    },
];
