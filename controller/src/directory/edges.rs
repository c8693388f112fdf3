//! Edge operations: subscriptions, fleet status, forced sync and sync tests.

use domainsec_model::Fingerprint;
use std::{collections::BTreeMap, time::Duration};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use domainsec_model::{Domain, InvalidField, ObjectName};
use ring::rand::SecureRandom as _;

use super::{Directory, Error, Result};
use crate::{
    authz::Admin,
    db::{
        self,
        change::{Audit, Change, json},
    },
    edgesync::{self, EdgeSyncHandle},
};

/// The edge port's side of the directory, present when the controller serves it.
#[derive(Clone)]
pub struct EdgeSide {
    /// Edge-port addresses for subscription files.
    pub endpoints: Vec<String>,
    /// Streams, trust and snapshots of this replica.
    pub handle: EdgeSyncHandle,
    /// Seals PFX bundles at rest.
    pub seal: std::sync::Arc<crate::seal::SealKey>,
}

/// What a subscription file holds.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// Organization name.
    pub organization: String,
    /// Edge name.
    pub edge: String,
    /// Edge FQDN.
    pub fqdn: String,
    /// Controller edge-port addresses.
    pub endpoints: Vec<String>,
    /// SHA-256 of the controllers' direct-trust certificates.
    pub controller_sha256: Vec<String>,
    /// The one-time secret (only here, never stored).
    pub secret: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// One row of `dsctl fleet status`.
#[derive(Debug, Clone)]
pub struct FleetEntry {
    /// The stored row.
    pub row: db::sync_state::FleetRow,
    /// Connected, judged by the last sign of life (a dead replica's rows go stale).
    pub connected: bool,
    /// The soonest end of validity of its SMTP certificates.
    pub certificate_not_after: Option<chrono::DateTime<Utc>>,
}

/// How far ahead `fleet status` flags an edge's SMTP certificate as expiring.
pub const EXPIRY_WATCH_DAYS: i64 = 30;

/// Result of a forced sync for one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeSyncOutcome {
    /// ACKed the version.
    Acked(u64),
    /// Refused it, with the reason.
    Nacked(u64, String),
    /// No stream open.
    NotConnected,
    /// No answer in time.
    Timeout,
}

/// Result of a sync test for one edge.
#[derive(Debug, Clone)]
pub struct EdgeSyncTest {
    /// Edge name.
    pub edge: String,
    /// Runs the current version with the expected content.
    pub in_sync: bool,
    /// Version it ACKed last.
    pub version_acked: u64,
    /// Sections that differ from what it should run.
    pub differing_sections: Vec<String>,
    /// A sentence for the operator.
    pub detail: String,
}

impl Directory {
    pub(super) fn edge_side(&self) -> Result<&EdgeSide> {
        self.edge_side.as_ref().ok_or(Error::Store(db::Error::NoEdgePort))
    }

    /// Records the edge if new and issues a one-time subscription for it.
    pub async fn new_subscription(
        &self,
        admin: &Admin,
        name: ObjectName,
        fqdn: Option<Domain>,
        expires_in: Duration,
    ) -> Result<NewSubscription> {
        admin.require_org_admin("create an edge subscription")?;
        if !(MIN_EXPIRY..=MAX_EXPIRY).contains(&expires_in) {
            return Err(InvalidField::new(
                "expires",
                humantime_text(expires_in),
                "must be from 1 minute to 30 days (the paper's bootstrap account lives 24 hours)",
            )
            .into());
        }
        let side = self.edge_side()?;
        // Drawn before anything is written: without randomness nothing changes.
        let secret = new_secret()?;
        let mut tx = Change::begin(&self.pool).await?;
        let existing = db::edges::list(tx.conn()).await?.into_iter().find(|e| e.name == name);
        let edge = match (existing, fqdn) {
            (Some(edge), _) if edge.certificate_sha256.is_some() => {
                return Err(
                    db::Error::from(db::SubscriptionRefusal::AlreadySubscribed { edge: name.to_string() }).into()
                );
            }
            (Some(edge), Some(fqdn)) if edge.fqdn != fqdn => {
                return Err(InvalidField::new(
                    "fqdn",
                    fqdn.as_str(),
                    format!(
                        "edge {name:?} is recorded with FQDN {}; leave --fqdn out or remove the edge first",
                        edge.fqdn
                    ),
                )
                .into());
            }
            (Some(edge), _) => edge,
            (None, Some(fqdn)) => db::edges::insert(tx.conn(), &name, &fqdn).await?,
            (None, None) => {
                return Err(InvalidField::new(
                    "fqdn",
                    "",
                    "a new edge needs its internet FQDN, e.g. mail1.contoso.com",
                )
                .into());
            }
        };
        let edge_id = db::edges::resolve(tx.conn(), "name", &name).await?;
        let expires_at = Utc::now() + chrono::Duration::from_std(expires_in).unwrap_or_default();
        db::subscriptions::issue(tx.conn(), edge_id, Fingerprint::of(secret.as_bytes()).as_str(), expires_at).await?;
        tx.commit(Audit {
            actor: &admin.name,
            actor_role: admin.role.as_str(),
            action: "edge.new-subscription",
            target: name.to_string(),
            before: None,
            after: json(&serde_json::json!({ "edge": edge, "expires_at": expires_at })),
        })
        .await?;
        let (organization, _) = self.organization().await?;
        Ok(NewSubscription {
            organization,
            edge: name.to_string(),
            fqdn: edge.fqdn.to_string(),
            endpoints: side.endpoints.clone(),
            controller_sha256: edgesync::controller_fingerprints(&self.pool).await?,
            secret,
            expires_at,
        })
    }

    /// Every edge with its sync state.
    pub async fn fleet_status(&self) -> Result<(u64, Vec<FleetEntry>)> {
        let (_, version) = self.organization().await?;
        let now = Utc::now();
        let rows = db::sync_state::fleet(&self.pool).await?;
        let mut soonest: std::collections::HashMap<String, chrono::DateTime<Utc>> = std::collections::HashMap::new();
        for (edge, not_after) in db::certificates::smtp_expiries(&self.pool).await? {
            let Ok(not_after) = chrono::DateTime::parse_from_rfc3339(&not_after) else { continue };
            let not_after = not_after.with_timezone(&Utc);
            soonest.entry(edge).and_modify(|t| *t = (*t).min(not_after)).or_insert(not_after);
        }
        let entries = rows
            .into_iter()
            .map(|row| {
                let fresh = row.state.last_seen_at.is_some_and(|seen| now - seen < stale_after());
                // A row a dead replica left "connected" is not: its lease ran out.
                let held = row.state.holder_live.unwrap_or(false);
                let connected = row.state.connected.unwrap_or(false) && held && fresh;
                let certificate_not_after = soonest.get(&row.name).copied();
                FleetEntry { connected, row, certificate_not_after }
            })
            .collect();
        Ok((version, entries))
    }

    /// Pushes the current snapshot to the edges now and waits for their answers.
    pub async fn sync_edges(
        &self,
        admin: &Admin,
        names: Option<Vec<ObjectName>>,
        timeout: Duration,
    ) -> Result<(u64, Vec<(String, EdgeSyncOutcome)>)> {
        match &names {
            Some(names) => admin.require_edges("start edge synchronization", names)?,
            None => admin.require_org_admin("start edge synchronization for all edges")?,
        }
        let side = self.edge_side()?;
        let started = Utc::now();
        let (version, fleet) = self.fleet_status().await?;
        let mut targets = Vec::new();
        let mut outcomes = BTreeMap::new();
        let wanted: Vec<String> = match &names {
            Some(names) => names.iter().map(ToString::to_string).collect(),
            None => fleet.iter().map(|e| e.row.name.clone()).collect(),
        };
        for name in &wanted {
            match fleet.iter().find(|e| &e.row.name == name) {
                None => return Err(db::Error::NotFound { kind: "edge", name: name.clone() }.into()),
                // The row may lag this replica's own streams by one flush.
                Some(entry) if !entry.connected && !side.handle.fleet.holds(name) => {
                    outcomes.insert(name.clone(), EdgeSyncOutcome::NotConnected);
                }
                Some(_) => targets.push(name.clone()),
            }
        }
        if !targets.is_empty() {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(edgesync::changes::RESYNC_CHANNEL)
                .bind(if names.is_none() { "*".to_owned() } else { targets.join(",") })
                .execute(&self.pool)
                .await
                .map_err(db::Error::from)?;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while !targets.is_empty() {
            let rows = db::sync_state::fleet(&self.pool).await?;
            targets.retain(|name| {
                let Some(row) = rows.iter().find(|r| &r.name == name) else { return false };
                let state = &row.state;
                if state.nack_at.is_some_and(|at| at >= started) {
                    let version = state.last_nack_version.and_then(|v| u64::try_from(v).ok()).unwrap_or_default();
                    let reason = state.last_nack_reason.clone().unwrap_or_default();
                    outcomes.insert(name.clone(), EdgeSyncOutcome::Nacked(version, reason));
                    return false;
                }
                if state.acked_at.is_some_and(|at| at >= started) {
                    let version = state.last_version_acked.and_then(|v| u64::try_from(v).ok()).unwrap_or_default();
                    outcomes.insert(name.clone(), EdgeSyncOutcome::Acked(version));
                    return false;
                }
                true
            });
            if targets.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        for name in targets {
            outcomes.insert(name, EdgeSyncOutcome::Timeout);
        }
        Ok((version, outcomes.into_iter().collect()))
    }

    /// Compares what each edge runs with what it should run now.
    pub async fn test_edge_sync(&self, names: Option<Vec<ObjectName>>) -> Result<(u64, Vec<EdgeSyncTest>)> {
        let side = self.edge_side()?;
        let (version, fleet) = self.fleet_status().await?;
        let config = side.handle.cache.at_least(&self.pool, version).await?;
        let mut tests = Vec::new();
        for entry in fleet {
            if let Some(names) = &names
                && !names.iter().any(|n| n.as_str() == entry.row.name)
            {
                continue;
            }
            let acked = entry.row.state.last_version_acked.and_then(|v| u64::try_from(v).ok()).unwrap_or_default();
            let expected = config
                .snapshot_for(&entry.row.name)
                .map(|snapshot| proto::edge::section_digests(&snapshot))
                .unwrap_or_default();
            let actual = entry.row.state.section_digests.clone().map(|d| d.0).unwrap_or_default();
            let differing: Vec<String> = expected
                .iter()
                .filter(|(section, digest)| actual.get(*section) != Some(digest))
                .map(|(s, _)| s.clone())
                .collect();
            let in_sync = acked == config.version && differing.is_empty();
            let detail = if !entry.row.subscribed {
                "not subscribed yet".to_owned()
            } else if in_sync {
                format!("runs version {acked}")
            } else if let (Some(v), Some(reason)) =
                (entry.row.state.last_nack_version, &entry.row.state.last_nack_reason)
                && u64::try_from(v).unwrap_or_default() > acked
            {
                format!("refused version {v}: {reason}; runs version {acked}")
            } else if !entry.connected {
                format!("not connected; runs version {acked}")
            } else {
                format!("runs version {acked}, current is {}", config.version)
            };
            tests.push(EdgeSyncTest {
                edge: entry.row.name,
                in_sync,
                version_acked: acked,
                differing_sections: differing,
                detail,
            });
        }
        Ok((config.version, tests))
    }
}

/// A subscription secret: 256 random bits, base64url.
fn new_secret() -> Result<String> {
    secret_from(|bytes| ring::rand::SystemRandom::new().fill(bytes))
}

/// A secret from `fill`'s bytes; none at all when `fill` fails (zeroed bytes
/// would be a secret anyone can guess).
fn secret_from(fill: impl FnOnce(&mut [u8]) -> Result<(), ring::error::Unspecified>) -> Result<String> {
    let mut bytes = [0u8; 32];
    fill(&mut bytes).map_err(|_| Error::NoRandomness)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn humantime_text(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}

fn stale_after() -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(120)
}

const MIN_EXPIRY: Duration = Duration::from_secs(60);
const MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_random_fill_issues_no_subscription_secret() {
        let secret = secret_from(|_| Err(ring::error::Unspecified));
        assert!(matches!(secret, Err(Error::NoRandomness)), "{secret:?}");
    }

    #[test]
    fn no_randomness_reaches_the_caller_as_an_internal_error_without_details() {
        let status = tonic::Status::from(Error::NoRandomness);
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("random"), "details go to the log: {}", status.message());
    }

    #[test]
    fn subscription_secrets_hold_256_random_bits() {
        let (first, second) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(first, second);
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&first).unwrap();
        assert_eq!(bytes.len(), 32);
    }
}
