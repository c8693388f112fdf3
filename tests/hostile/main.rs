//! Hostile peers against the real `domainsec-edge`: one organization (Contoso,
//! controller + edge `mail1`, configured with dsctl) set up once, then named
//! attacks run one after another by a scripted SMTP client — each asserting the
//! exact reply and what reached the maildir — and a report of every case.
//!
//! # Layout
//! - `fixture`: the organization, the edge, its settings; shared by every case.
//! - `attacker`: the scripted SMTP (+STARTTLS, client certificates) client.
//! - `partner_pki`: the partner CA, decoys and strangers, the misbehaving CRL server.
//! - `delivered`: reading a delivered header as a mail client would (unfolded).
//! - `suite`: running named cases with deadlines and reporting each.
//! - `forged_mark` (A), `spoofing` (B), `counter_flood` (C), `certificates` (D),
//!   `liveness` (E): the attacks.
//!
//! Run alone with `cargo build --bins && cargo test -p domainsec-e2e --test hostile`;
//! `HOSTILE_CASES=A,D4` selects cases by id prefix; `KEEP_TEST_DIRS=1` keeps the
//! edge's data dir (maildir, protocol logs) and logs.
#![allow(clippy::unwrap_used)]

mod attacker;
mod certificates;
mod counter_flood;
mod delivered;
mod fixture;
mod forged_mark;
mod liveness;
mod partner_pki;
mod spoofing;
mod suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_cannot_forge_spoof_flood_or_stop_the_edge() {
    let fixture = fixture::Fixture::start().await;
    liveness::start_floods(&fixture).await;
    let cases =
        [forged_mark::cases(), spoofing::cases(), counter_flood::cases(), certificates::cases(), liveness::cases()];
    let report = suite::run(&fixture, cases.into_iter().flatten().collect()).await;
    eprintln!("edge data and logs: {}", fixture.root.display());
    fixture.stop().await;
    report.assert_all_passed();
}
