//! C. Flooding the counters: 40 plain-text `MAIL FROM:<a@rN.fabrikam.com>`, each
//! refused (530 5.7.10), must not grow 40 per-partner rows. Counters are kept by
//! the list entry the sender matched (`*.fabrikam.com`), so at most one row may
//! name a fabrikam.com domain, whatever the sender wrote.

use std::{collections::BTreeSet, sync::Arc};

use anyhow::ensure;
use domainsec_e2e::eventually;

use crate::{
    attacker::Session,
    fixture::{EDGE, Fixture},
    suite::{Case, Outcome},
};

/// The cases of group C.
pub fn cases() -> Vec<Case> {
    vec![Case::new("C1", "40 refused senders under *.fabrikam.com make at most one counter row", flood)]
}

async fn flood(fixture: Arc<Fixture>) -> Outcome {
    let before = fresh_counters(&fixture).await;
    let baseline = total_refusals(&before);
    // Eight refusals per session: the edge closes a session after ten errors.
    for batch in (1..=SENDERS).collect::<Vec<_>>().chunks(8) {
        let mut session = Session::plain(fixture.inet).await?;
        for n in batch {
            let reply = session.command(&format!("MAIL FROM:<a@r{n}.fabrikam.com>")).await?;
            ensure!(reply.is(530, "5.7.10"), "r{n}.fabrikam.com answered {reply}\n{}", session.transcript());
        }
        session.quit().await;
    }
    eventually("the flood's refusals in the counters", || async {
        let counters = fixture.org.json(&["counters", "--edge", EDGE]).await;
        (total_refusals(&counters) >= baseline + SENDERS).then_some(())
    })
    .await;
    let after = fresh_counters(&fixture).await;
    let rows = partner_rows(&after);
    let fabrikam: Vec<&String> = rows.iter().filter(|d| d.ends_with("fabrikam.com")).collect();
    ensure!(
        fabrikam.len() <= 1,
        "{} per-partner counter rows name a fabrikam.com domain (at most one, for *.fabrikam.com, expected): {}",
        fabrikam.len(),
        abridged(&fabrikam)
    );
    Ok(())
}

/// The counters as of a heartbeat sent after this call (so nothing done before is missing).
async fn fresh_counters(fixture: &Fixture) -> serde_json::Value {
    let first = fixture.org.json(&["counters", "--edge", EDGE]).await;
    let stamp = first["last_heartbeat"].clone();
    eventually("a newer heartbeat", || async {
        let counters = fixture.org.json(&["counters", "--edge", EDGE]).await;
        (counters["last_heartbeat"] != stamp).then_some(counters)
    })
    .await
}

fn total_refusals(counters: &serde_json::Value) -> u64 {
    counters["counters"]["domain_secured.inbound_refusals"].as_u64().unwrap_or(0)
}

/// The partner domains the counters hold a row for (the PARTNER table of `dsctl counters`).
fn partner_rows(counters: &serde_json::Value) -> BTreeSet<String> {
    let Some(map) = counters["counters"].as_object() else { return BTreeSet::new() };
    map.keys()
        .filter_map(|name| name.strip_prefix("domain_secured."))
        .filter_map(|rest| {
            ["received.", "sent.", "outbound_failures.", "inbound_refusals."]
                .iter()
                .find_map(|prefix| rest.strip_prefix(prefix))
        })
        .map(str::to_owned)
        .collect()
}

fn abridged(domains: &[&String]) -> String {
    let shown: Vec<&str> = domains.iter().take(6).map(|d| d.as_str()).collect();
    let more = domains.len().saturating_sub(shown.len());
    let text = shown.join(", ");
    if more > 0 { format!("{text}, … and {more} more") } else { text }
}

const SENDERS: u64 = 40;
