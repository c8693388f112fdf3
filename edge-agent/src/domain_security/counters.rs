//! The paper's three counters — Domain-Secured Messages Received, Domain-Secured
//! Messages Sent, Domain-Secured Outbound Session Failures — with per-partner and
//! per-reason breakdowns, kept across restarts in `DATA_DIR/counters.toml`.
//!
//! A partner is a secure-list *entry* (`woodgrovebank.com`, `*.fabrikam.com`),
//! never a domain a peer names, so an anonymous sender cannot add rows; and past
//! [`MAX_PARTNERS`] entries the rest are counted together under [`OTHER_PARTNERS`],
//! so a heartbeat stays small whatever the lists hold.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Mutex, PoisonError},
};

use domainsec_model::DomainPattern;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::store::write_atomic;

/// The counters of one edge.
#[derive(Debug)]
pub struct DomainSecurityCounters {
    path: PathBuf,
    state: Mutex<(Counts, bool)>,
}

/// The figures, as stored and reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Domain-Secured Messages Received.
    pub messages_received: u64,
    /// Domain-Secured Messages Sent.
    pub messages_sent: u64,
    /// Domain-Secured Outbound Session Failures.
    pub outbound_session_failures: u64,
    /// Inbound Domain Security refusals.
    pub inbound_refusals: u64,
    /// By partner domain.
    pub partners: BTreeMap<String, PartnerCounts>,
    /// Failures and refusals by reason (`name-mismatch`, `revoked`, …).
    pub reasons: BTreeMap<String, u64>,
}

/// One partner's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PartnerCounts {
    /// Messages received from it, Domain Secured.
    pub received: u64,
    /// Messages sent to it, Domain Secured.
    pub sent: u64,
    /// Outbound sessions to it that failed Domain Security.
    pub outbound_failures: u64,
    /// Inbound transactions from it refused.
    pub inbound_refusals: u64,
    /// Outbound sessions to it that passed Domain Security (TLS-RPT's successful sessions).
    pub outbound_sessions: u64,
    /// Its failures and refusals by direction and reason (`outbound.revoked`,
    /// `inbound.starttls-not-used`).
    pub reasons: BTreeMap<String, u64>,
    /// Certificates it presented, by SHA-256 (at most [`MAX_CERTIFICATES_PER_PARTNER`],
    /// the most recently seen).
    pub certificates: BTreeMap<String, SeenCertificate>,
}

/// A certificate a partner presented (passing the checks or not).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeenCertificate {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// When this edge last saw it, Unix seconds.
    pub last_seen: i64,
}

impl DomainSecurityCounters {
    /// Loads the counters from the data dir (zeros when none are stored yet).
    pub fn load(data_dir: &std::path::Path) -> Self {
        let path = data_dir.join("counters.toml");
        let counts = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| {
                toml::from_str::<Counts>(&text)
                    .map_err(|e| warn!(%e, "counters.toml unreadable; starting from zero"))
                    .ok()
            })
            .unwrap_or_default();
        Self { path, state: Mutex::new((counts, false)) }
    }

    /// A Domain Secured message accepted from a partner under list `entry`.
    pub fn received(&self, entry: &DomainPattern) {
        self.update(|c| {
            c.messages_received += 1;
            c.partner(entry).received += 1;
        });
    }

    /// A Domain Secured message delivered to a partner under list `entry`.
    pub fn sent(&self, entry: &DomainPattern) {
        self.update(|c| {
            c.messages_sent += 1;
            c.partner(entry).sent += 1;
        });
    }

    /// An outbound session to a partner under list `entry` that failed Domain Security, and why.
    pub fn outbound_failure(&self, entry: &DomainPattern, reason: &'static str) {
        self.update(|c| {
            c.outbound_session_failures += 1;
            let partner = c.partner(entry);
            partner.outbound_failures += 1;
            *partner.reasons.entry(format!("outbound.{reason}")).or_default() += 1;
            *c.reasons.entry(reason.to_owned()).or_default() += 1;
        });
    }

    /// An outbound session to `domain` under DANE or MTA-STS that failed, and why
    /// (`dane.no-match`): per domain and reason, outside the paper's three counters.
    pub fn published_failure(&self, domain: &DomainPattern, reason: &'static str) {
        self.update(|c| {
            let partner = c.partner(domain);
            partner.outbound_failures += 1;
            *partner.reasons.entry(format!("outbound.{reason}")).or_default() += 1;
            *c.reasons.entry(reason.to_owned()).or_default() += 1;
        });
    }

    /// An outbound session to `domain` that passed DANE or MTA-STS (`source`: `dane`,
    /// `mta-sts`), kept as `policy.SOURCE` so a TLS report names the policy type.
    pub fn published_session(&self, domain: &DomainPattern, source: &'static str) {
        self.update(|c| {
            let partner = c.partner(domain);
            partner.outbound_sessions += 1;
            *partner.reasons.entry(format!("policy.{source}")).or_default() += 1;
        });
    }

    /// An inbound transaction under list `entry` refused by Domain Security, and why.
    pub fn inbound_refusal(&self, entry: &DomainPattern, reason: &'static str) {
        self.update(|c| {
            c.inbound_refusals += 1;
            let partner = c.partner(entry);
            partner.inbound_refusals += 1;
            *partner.reasons.entry(format!("inbound.{reason}")).or_default() += 1;
            *c.reasons.entry(reason.to_owned()).or_default() += 1;
        });
    }

    /// An outbound session to a partner under list `entry` that passed Domain Security.
    pub fn outbound_session(&self, entry: &DomainPattern) {
        self.update(|c| c.partner(entry).outbound_sessions += 1);
    }

    /// A certificate the partner under list `entry` presented; the least recently
    /// seen is forgotten past [`MAX_CERTIFICATES_PER_PARTNER`].
    pub fn certificate_seen(&self, entry: &DomainPattern, sha256: &str, seen: SeenCertificate) {
        self.update(|c| {
            let certificates = &mut c.partner(entry).certificates;
            certificates.insert(sha256.to_owned(), seen);
            while certificates.len() > MAX_CERTIFICATES_PER_PARTNER {
                let oldest = certificates.iter().min_by_key(|(_, seen)| seen.last_seen).map(|(sha, _)| sha.clone());
                match oldest {
                    Some(sha) => certificates.remove(&sha),
                    None => break,
                };
            }
        });
    }

    /// The current figures.
    pub fn counts(&self) -> Counts {
        self.lock().0.clone()
    }

    /// Name → value pairs for heartbeats and metrics.
    pub fn flat(&self) -> Vec<(String, u64)> {
        let counts = self.counts();
        let mut flat = vec![
            ("domain_secured.messages_received".to_owned(), counts.messages_received),
            ("domain_secured.messages_sent".to_owned(), counts.messages_sent),
            ("domain_secured.outbound_session_failures".to_owned(), counts.outbound_session_failures),
            ("domain_secured.inbound_refusals".to_owned(), counts.inbound_refusals),
        ];
        for (domain, partner) in &counts.partners {
            flat.push((format!("domain_secured.received.{domain}"), partner.received));
            flat.push((format!("domain_secured.sent.{domain}"), partner.sent));
            flat.push((format!("domain_secured.outbound_failures.{domain}"), partner.outbound_failures));
            flat.push((format!("domain_secured.inbound_refusals.{domain}"), partner.inbound_refusals));
        }
        for (reason, count) in &counts.reasons {
            flat.push((format!("domain_secured.failure_reason.{reason}"), *count));
        }
        flat
    }

    /// Writes the counters if they changed since the last save (called periodically and at shutdown).
    pub fn save(&self) {
        let (counts, dirty) = {
            let mut state = self.lock();
            let snapshot = (state.0.clone(), state.1);
            state.1 = false;
            snapshot
        };
        if !dirty {
            return;
        }
        let text = toml::to_string(&counts).unwrap_or_default();
        if let Err(error) = write_atomic(&self.path, text.as_bytes(), 0o644) {
            warn!(%error, "cannot save the Domain Security counters");
            self.lock().1 = true;
        }
    }

    fn update(&self, change: impl FnOnce(&mut Counts)) {
        let mut state = self.lock();
        change(&mut state.0);
        state.1 = true;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Counts, bool)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === impl Counts ===

impl Counts {
    /// The row of list `entry`, or the shared [`OTHER_PARTNERS`] row once
    /// [`MAX_PARTNERS`] rows exist.
    fn partner(&mut self, entry: &DomainPattern) -> &mut PartnerCounts {
        let key = entry.to_string();
        let key = if self.partners.contains_key(&key) || self.partners.len() < MAX_PARTNERS {
            key
        } else {
            OTHER_PARTNERS.to_owned()
        };
        self.partners.entry(key).or_default()
    }
}

/// Certificates remembered per partner (a rollover shows old and new side by side).
pub const MAX_CERTIFICATES_PER_PARTNER: usize = 4;

/// Partner rows kept apart; the secure lists of a real organization hold far fewer.
pub const MAX_PARTNERS: usize = 1000;
/// The row that counts every partner past [`MAX_PARTNERS`].
pub const OTHER_PARTNERS: &str = "(other)";

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> DomainPattern {
        DomainPattern::parse(text).unwrap()
    }

    #[test]
    fn counters_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let counters = DomainSecurityCounters::load(dir.path());
        counters.received(&entry("woodgrovebank.com"));
        counters.sent(&entry("woodgrovebank.com"));
        counters.sent(&entry("woodgrovebank.com"));
        counters.outbound_failure(&entry("fabrikam.com"), "name-mismatch");
        counters.save();
        let reloaded = DomainSecurityCounters::load(dir.path());
        let counts = reloaded.counts();
        assert_eq!((counts.messages_received, counts.messages_sent, counts.outbound_session_failures), (1, 2, 1));
        assert_eq!(counts.partners["fabrikam.com"].outbound_failures, 1);
        assert_eq!(counts.reasons["name-mismatch"], 1);
        assert_eq!(counts.partners["fabrikam.com"].reasons["outbound.name-mismatch"], 1);
        let flat: BTreeMap<String, u64> = reloaded.flat().into_iter().collect();
        assert_eq!(flat["domain_secured.sent.woodgrovebank.com"], 2);
        assert_eq!(flat["domain_secured.failure_reason.name-mismatch"], 1);
    }

    #[test]
    fn partner_rows_are_capped_and_the_rest_share_one_row() {
        let dir = tempfile::tempdir().unwrap();
        let counters = DomainSecurityCounters::load(dir.path());
        for n in 0..MAX_PARTNERS + 50 {
            counters.inbound_refusal(&entry(&format!("p{n}.example")), "starttls-not-used");
        }
        counters.inbound_refusal(&entry("p0.example"), "starttls-not-used");
        let counts = counters.counts();
        assert_eq!(counts.partners.len(), MAX_PARTNERS + 1);
        assert_eq!(counts.partners[OTHER_PARTNERS].inbound_refusals, 50);
        assert_eq!(counts.partners["p0.example"].inbound_refusals, 2, "an existing row keeps counting");
        assert_eq!(counts.inbound_refusals, MAX_PARTNERS as u64 + 51);
    }
}
