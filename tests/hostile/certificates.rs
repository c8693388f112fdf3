//! D. Certificate abuse over STARTTLS with a client certificate, `MAIL FROM` a
//! Woodgrove Bank address: the valid partner is marked exactly once; extra
//! certificates in the chain change nothing; strangers and revoked partners are
//! refused for good (550 5.7.5); a revocation check that cannot complete — a CRL
//! signed by the wrong key, a CRL server down, failing, hanging or endless — is a
//! transient `451 4.7.5` whose text tells the partner nothing about Contoso's
//! network.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use domainsec_e2e::free_port;

use crate::{
    attacker::{Identity, Reply, Session, message},
    delivered::marked_once,
    fixture::{CRL_FETCH_TIMEOUT, Fixture, POSTMASTER},
    partner_pki::{CrlBehaviour, Issued, PartnerPki, self_signed, stranger, unrelated_leaf},
    suite::{Case, Outcome},
};

/// The cases of group D.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new("D1a", "a valid Woodgrove Bank certificate: 250, one X-DomainSec-Auth, one x-domainsec=pass", valid),
        Case::new("D1b", "a valid partner that also sends forged marks: replaced, not duplicated", valid_forging),
        Case::new("D2a", "unrelated certificates appended after the real chain: judged on the real path", appended),
        Case::new("D2b", "a decoy CA with the partner CA's name but another key ahead of the real CA", decoy_issuer),
        Case::new("D2c", "an appended stranger naming a CRL URL: 250, and the edge does not fetch it", crl_probe),
        Case::new("D3a", "a certificate for woodgrovebank.com from an untrusted self-signed CA: 550 5.7.5", untrusted),
        Case::new("D3b", "a self-signed certificate for woodgrovebank.com: 550 5.7.5", self_signed_leaf),
        Case::new(
            "D4a",
            "a CRL signed by the wrong issuer (same name, other key): 451 4.7.5, no internals",
            wrong_issuer,
        ),
        Case::new("D4b", "the CRL server refuses connections: 451 4.7.5, no internals", crl_refused),
        Case::new("D4c", "the CRL server answers HTTP 500: 451 4.7.5, no internals", crl_error_status),
        Case::new("D5", "a CRL server that accepts and never answers: 451 4.7.5 within the timeout", crl_hangs),
        Case::new("D6", "a CRL server sending 50 MB: 451 4.7.5, and the edge still answers", crl_endless),
        Case::new("D7", "a revoked partner certificate: 550 5.7.5", revoked),
        Case::new("D8", "a valid Woodgrove Bank certificate used for x.fabrikam.com: 550 5.7.5", name_mismatch),
    ]
}

async fn valid(fixture: Arc<Fixture>) -> Outcome {
    let partner = fixture.pki.issue(PARTNER_HOST, GOOD_CRL);
    let delivered = partner_mail(&fixture, &partner.identity, "D1a-partner", "{HEAD}").await?;
    marked_once("D1a-partner", &delivered, &partner.sha256)
}

async fn valid_forging(fixture: Arc<Fixture>) -> Outcome {
    let partner = fixture.pki.issue(PARTNER_HOST, GOOD_CRL);
    let forged = "X-DomainSec-Auth: partner; domain=evil.example; cert=00\r\n{HEAD}\
                  Authentication-Results: mail1.contoso.com; x-domainsec=pass smtp.mailfrom-domain=evil.example\r\n\
                  X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=00\r\n";
    let delivered = partner_mail(&fixture, &partner.identity, "D1b-partner-forging", forged).await?;
    marked_once("D1b-partner-forging", &delivered, &partner.sha256)
}

async fn appended(fixture: Arc<Fixture>) -> Outcome {
    let partner = fixture.pki.issue(PARTNER_HOST, GOOD_CRL);
    let mut identity = partner.identity.clone();
    identity.chain.push(unrelated_leaf("mail.unrelated.example", None));
    identity.chain.push(stranger("ca.unrelated.example").identity.chain[1].clone());
    let delivered = partner_mail(&fixture, &identity, "D2a-appended", "{HEAD}").await?;
    marked_once("D2a-appended", &delivered, &partner.sha256)
}

async fn decoy_issuer(fixture: Arc<Fixture>) -> Outcome {
    let partner = fixture.pki.issue(PARTNER_HOST, GOOD_CRL);
    let mut identity = partner.identity.clone();
    identity.chain.insert(1, fixture.pki.decoy_ca());
    let delivered = partner_mail(&fixture, &identity, "D2b-decoy", "{HEAD}").await?;
    marked_once("D2b-decoy", &delivered, &partner.sha256)
}

async fn crl_probe(fixture: Arc<Fixture>) -> Outcome {
    let partner = fixture.pki.issue(PARTNER_HOST, GOOD_CRL);
    let probe = format!("{}{PROBE_CRL}", fixture.pki.base_url);
    let mut identity = partner.identity.clone();
    identity.chain.insert(1, unrelated_leaf("mail.unrelated.example", Some(&probe)));
    let outcome = partner_mail(&fixture, &identity, "D2c-probe", "{HEAD}").await;
    let hits = fixture.pki.hits(PROBE_CRL);
    ensure!(hits == 0, "the edge fetched {probe} ({hits}x), named by a certificate outside the verified path");
    marked_once("D2c-probe", &outcome?, &partner.sha256)
}

async fn untrusted(fixture: Arc<Fixture>) -> Outcome {
    refused(&fixture, &stranger(PARTNER_HOST).identity, WOODGROVE_SENDER, 550, "5.7.5").await.map(drop)
}

async fn self_signed_leaf(fixture: Arc<Fixture>) -> Outcome {
    refused(&fixture, &self_signed(PARTNER_HOST).identity, WOODGROVE_SENDER, 550, "5.7.5").await.map(drop)
}

async fn wrong_issuer(fixture: Arc<Fixture>) -> Outcome {
    fixture.pki.serve(WRONG_ISSUER_CRL, CrlBehaviour::WrongIssuer);
    let partner = fixture.pki.issue(PARTNER_HOST, WRONG_ISSUER_CRL);
    transient(&fixture, &partner, WRONG_ISSUER_CRL, &[]).await.map(drop)
}

async fn crl_refused(fixture: Arc<Fixture>) -> Outcome {
    let closed = free_port();
    let url = format!("http://127.0.0.1:{closed}/down.crl");
    let partner = fixture.pki.issue_with_crl_url(PARTNER_HOST, &url);
    let reply = refused(&fixture, &partner.identity, WOODGROVE_SENDER, 451, "4.7.5").await?.0;
    no_internals(&reply, &fixture.pki, &[closed.to_string()])
}

async fn crl_error_status(fixture: Arc<Fixture>) -> Outcome {
    fixture.pki.serve(STATUS_CRL, CrlBehaviour::Status(500));
    let partner = fixture.pki.issue(PARTNER_HOST, STATUS_CRL);
    transient(&fixture, &partner, STATUS_CRL, &["500"]).await.map(drop)
}

async fn crl_hangs(fixture: Arc<Fixture>) -> Outcome {
    fixture.pki.serve(HANGING_CRL, CrlBehaviour::Hang);
    let partner = fixture.pki.issue(PARTNER_HOST, HANGING_CRL);
    let took = transient(&fixture, &partner, HANGING_CRL, &[]).await?;
    let bound = CRL_FETCH_TIMEOUT + Duration::from_secs(3);
    ensure!(took <= bound, "the 451 took {took:?}; crl_fetch_timeout is {CRL_FETCH_TIMEOUT:?}");
    Ok(())
}

async fn crl_endless(fixture: Arc<Fixture>) -> Outcome {
    fixture.pki.serve(ENDLESS_CRL, CrlBehaviour::Endless { octets: 50 * 1024 * 1024 });
    let partner = fixture.pki.issue(PARTNER_HOST, ENDLESS_CRL);
    let outcome = transient(&fixture, &partner, ENDLESS_CRL, &[]).await.map(drop);
    let mut session = Session::plain(fixture.inet).await?;
    session.expect("EHLO after.example", 250).await?;
    session.quit().await;
    outcome
}

async fn revoked(fixture: Arc<Fixture>) -> Outcome {
    let partner = fixture.pki.issue(PARTNER_HOST, REVOKED_CRL);
    fixture.pki.serve(REVOKED_CRL, CrlBehaviour::Revoking(vec![partner.serial.clone()]));
    let (reply, _) = refused(&fixture, &partner.identity, WOODGROVE_SENDER, 550, "5.7.5").await?;
    ensure!(reply.text.contains("revoked"), "the refusal does not say revoked: {reply}");
    ensure!(fixture.pki.hits(REVOKED_CRL) > 0, "the edge never fetched {REVOKED_CRL}");
    Ok(())
}

async fn name_mismatch(fixture: Arc<Fixture>) -> Outcome {
    let partner = fixture.pki.issue(PARTNER_HOST, GOOD_CRL);
    refused(&fixture, &partner.identity, "ceo@x.fabrikam.com", 550, "5.7.5").await.map(drop)
}

/// Mail from Kim over mutual TLS with `identity`; every step must succeed. Returns the delivered copy.
async fn partner_mail(fixture: &Fixture, identity: &Identity, tag: &str, header: &str) -> Result<String> {
    let mut session = Session::tls(fixture.inet, Some(identity)).await?;
    let reply = session.command(&format!("MAIL FROM:<{WOODGROVE_SENDER}>")).await?;
    ensure!(reply.is(250, "2.1.0"), "MAIL FROM answered {reply}, expected 250 2.1.0\n{}", session.transcript());
    session.expect(&format!("RCPT TO:<{POSTMASTER}>"), 250).await?;
    let reply = session.data(&message(header, tag, true)).await?;
    ensure!(reply.is(250, "2.6.0"), "the message answered {reply}\n{}", session.transcript());
    session.quit().await;
    fixture.await_delivery(tag).await
}

/// `MAIL FROM:<sender>` over mutual TLS with `identity` must get `code status`
/// and leave no transaction. Returns the reply and how long it took.
async fn refused(
    fixture: &Fixture,
    identity: &Identity,
    sender: &str,
    code: u16,
    status: &str,
) -> Result<(Reply, Duration)> {
    let mut session = Session::tls(fixture.inet, Some(identity)).await?;
    let started = Instant::now();
    let reply = session.command(&format!("MAIL FROM:<{sender}>")).await?;
    let took = started.elapsed();
    ensure!(reply.is(code, status), "MAIL FROM answered {reply}, expected {code} {status}\n{}", session.transcript());
    let rcpt = session.command(&format!("RCPT TO:<{POSTMASTER}>")).await?;
    ensure!(rcpt.code == 503, "RCPT after the refusal answered {rcpt}, expected 503");
    session.quit().await;
    Ok((reply, took))
}

/// A `451 4.7.5` for `partner`, whose CRL is `path`, that names no internals; the
/// edge must really have asked for the CRL. Returns how long the reply took.
async fn transient(fixture: &Fixture, partner: &Issued, path: &str, also: &[&str]) -> Result<Duration> {
    let (reply, took) = refused(fixture, &partner.identity, WOODGROVE_SENDER, 451, "4.7.5").await?;
    ensure!(fixture.pki.hits(path) > 0, "the edge never fetched {path}");
    let also: Vec<String> = also.iter().map(|s| (*s).to_owned()).collect();
    no_internals(&reply, &fixture.pki, &also)?;
    Ok(took)
}

/// The reply must not echo the CRL server's address, the URL, or the transport's
/// complaint (connection refused, HTTP status, timeout, size): those are Contoso's.
fn no_internals(reply: &Reply, pki: &PartnerPki, also: &[String]) -> Outcome {
    let text = reply.text.to_ascii_lowercase();
    let mut needles: Vec<String> = INTERNALS.iter().map(|s| (*s).to_owned()).collect();
    needles.push(pki.port.to_string());
    needles.extend(also.iter().cloned());
    let leaked: Vec<&String> = needles.iter().filter(|n| text.contains(n.as_str())).collect();
    ensure!(leaked.is_empty(), "the reply echoes internal details {leaked:?}: {reply}");
    Ok(())
}

const WOODGROVE_SENDER: &str = "kim@woodgrovebank.com";
const PARTNER_HOST: &str = "mail.woodgrovebank.com";
const GOOD_CRL: &str = "/good.crl";
const PROBE_CRL: &str = "/probe.crl";
const WRONG_ISSUER_CRL: &str = "/wrong-issuer.crl";
const STATUS_CRL: &str = "/status-500.crl";
const HANGING_CRL: &str = "/hang.crl";
const ENDLESS_CRL: &str = "/endless.crl";
const REVOKED_CRL: &str = "/revoked.crl";

/// Words a transient refusal must not carry (lower-case).
const INTERNALS: &[&str] = &[
    "http",
    "127.0.0.1",
    ".crl",
    "connection",
    "refused",
    "reset",
    "no answer",
    "timed out",
    "timeout",
    "larger than",
    "byte limit",
    "internal server error",
    "proxy",
];
