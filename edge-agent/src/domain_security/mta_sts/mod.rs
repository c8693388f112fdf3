//! MTA-STS (RFC 8461): finding a recipient domain's policy, with the cache that makes
//! it worth something (a policy outlives an attacker who hides the TXT record or the
//! policy server, until its `max_age`).
//!
//! Discovery (RFC 8461 §3, §5.1): the `_mta-sts` TXT record names the current policy
//! id. A cached, unexpired policy with that id is used as is; a new id (or no cached
//! policy) means a fetch; a fetch that fails, a TXT lookup that fails, or a TXT record
//! that vanished leave an unexpired cached policy in force. A policy past half its
//! `max_age` is refetched in the background. Fetches per domain are at most one per
//! [`MIN_REFETCH_INTERVAL`], so a domain that churns its id (or an attacker who forges
//! TXT answers) costs one fetch a minute, not one per message. The cache holds at most
//! [`MAX_CACHED_POLICIES`] domains and is kept in `DATA_DIR/mta-sts-cache.toml`.
//!
//! # Layout
//! - `policy`: the TXT record and policy file parsers, MX pattern matching.
//! - `fetch`: the HTTPS fetch with its limits.

mod fetch;
pub mod policy;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use tracing::{Instrument as _, debug, info, info_span, warn};

pub use self::fetch::{MAX_POLICY_SIZE, webpki_roots};
use self::policy::{Mode, Policy, record_id};
use crate::{
    routing::dns::{MxResolver, TxtAnswer},
    store::write_atomic,
};

/// A policy as cached: its id, its text parsed, and when it was fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPolicy {
    /// The TXT record's `id` it was fetched under.
    pub id: String,
    /// The policy.
    pub policy: Policy,
    /// Unix seconds.
    pub fetched_at: u64,
}

/// The policy in force for a domain, and how it was found (for logs and `policy explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StsLookup {
    /// An `enforce` or `testing` policy applies.
    Policy {
        /// The policy.
        cached: CachedPolicy,
        /// "fetched now", "cached", "cached; the TXT lookup failed: …".
        how: String,
    },
    /// No policy applies (no TXT record and nothing cached, mode `none`, a fetch that
    /// failed with nothing cached): opportunistic TLS, as RFC 8461 §5 says.
    NoPolicy(String),
}

/// The MTA-STS state of an edge.
pub struct MtaSts {
    path: PathBuf,
    roots: Arc<rustls::RootCertStore>,
    fetch_timeout: Duration,
    cache: Mutex<BTreeMap<String, CachedPolicy>>,
    last_fetch: Mutex<HashMap<String, Instant>>,
    refreshing: Mutex<HashSet<String>>,
}

// === impl CachedPolicy ===

impl CachedPolicy {
    /// Whether `max_age` has not passed since it was fetched.
    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.fetched_at.saturating_add(self.policy.max_age)
    }

    fn past_half_life(&self, now: u64) -> bool {
        now >= self.fetched_at.saturating_add(self.policy.max_age / 2)
    }
}

// === impl MtaSts ===

impl MtaSts {
    /// Loads the cache from `data_dir`; `extra_roots` are trusted beside Mozilla's for
    /// policy servers and MX certificates (a private PKI, tests).
    pub fn new(data_dir: &std::path::Path, extra_roots: &[CertificateDer<'static>], fetch_timeout: Duration) -> Self {
        let path = data_dir.join("mta-sts-cache.toml");
        let cache = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| {
                toml::from_str::<StoredCache>(&text)
                    .map_err(|error| warn!(%error, "mta-sts-cache.toml unreadable; starting with no cached policy"))
                    .ok()
            })
            .map(|stored| stored.policies)
            .unwrap_or_default();
        Self {
            path,
            roots: Arc::new(webpki_roots(extra_roots)),
            fetch_timeout,
            cache: Mutex::new(cache),
            last_fetch: Mutex::default(),
            refreshing: Mutex::default(),
        }
    }

    /// The roots MX certificates are checked against under an MTA-STS policy.
    pub fn roots(&self) -> &Arc<rustls::RootCertStore> {
        &self.roots
    }

    /// The policy in force for `domain` (lower-case, no trailing dot).
    pub async fn lookup(self: &Arc<Self>, resolver: &MxResolver, domain: &str) -> StsLookup {
        let now = unix_now();
        let cached = self.cached(domain).filter(|c| c.is_fresh(now));
        let id = match resolver.txt(&format!("_mta-sts.{domain}")).await {
            TxtAnswer::Found(records) => record_id(&records).map_err(|e| e.to_string()),
            TxtAnswer::Absent => Err("no _mta-sts TXT record".to_owned()),
            TxtAnswer::Failed(reason) => Err(format!("the _mta-sts TXT lookup failed: {reason}")),
        };
        let lookup = match (id, cached) {
            (Ok(id), Some(cached)) if cached.id == id => self.use_cached(resolver, domain, cached, "cached".into()),
            (Ok(id), cached) => self.fetch_or_keep(resolver, domain, &id, cached).await,
            (Err(reason), Some(cached)) => self.use_cached(resolver, domain, cached, format!("cached; {reason}")),
            (Err(reason), None) => StsLookup::NoPolicy(reason),
        };
        match lookup {
            StsLookup::Policy { cached, .. } if cached.policy.mode == Mode::None => {
                StsLookup::NoPolicy(format!("the policy (id {}) has mode none", cached.id))
            }
            other => other,
        }
    }

    /// What the cache holds for `domain`, fresh or not.
    pub fn cached(&self, domain: &str) -> Option<CachedPolicy> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(domain).cloned()
    }

    fn use_cached(
        self: &Arc<Self>,
        resolver: &MxResolver,
        domain: &str,
        cached: CachedPolicy,
        how: String,
    ) -> StsLookup {
        if cached.past_half_life(unix_now()) {
            self.refresh_in_background(resolver, domain);
        }
        StsLookup::Policy { cached, how }
    }

    async fn fetch_or_keep(
        self: &Arc<Self>,
        resolver: &MxResolver,
        domain: &str,
        id: &str,
        cached: Option<CachedPolicy>,
    ) -> StsLookup {
        if !self.may_fetch(domain) {
            return match cached {
                Some(cached) => {
                    StsLookup::Policy { cached, how: "cached; a fetch was tried within the last minute".into() }
                }
                None => StsLookup::NoPolicy("the policy fetch failed within the last minute".into()),
            };
        }
        match self.fetch(resolver, domain, id).await {
            Ok(fetched) => StsLookup::Policy { cached: fetched, how: "fetched now".into() },
            Err(reason) => {
                warn!(%domain, %reason, "MTA-STS policy fetch failed");
                match cached {
                    Some(cached) => StsLookup::Policy { cached, how: format!("cached; the fetch failed: {reason}") },
                    None => StsLookup::NoPolicy(format!("the policy fetch failed: {reason}")),
                }
            }
        }
    }

    /// Fetches, parses and caches the policy published under `id`.
    async fn fetch(&self, resolver: &MxResolver, domain: &str, id: &str) -> Result<CachedPolicy, String> {
        let host = format!("mta-sts.{domain}");
        let addresses = resolver.resolve_host(&host, HTTPS_PORT).await.map_err(|e| e.to_string())?.addresses;
        let text = fetch::fetch_policy(domain, &addresses, &self.roots, self.fetch_timeout).await?;
        let policy = Policy::parse(&text).map_err(|e| e.to_string())?;
        let cached = CachedPolicy { id: id.to_owned(), policy, fetched_at: unix_now() };
        info!(%domain, id, mode = %cached.policy.mode, max_age = cached.policy.max_age, "MTA-STS policy fetched");
        self.store(domain, cached.clone());
        Ok(cached)
    }

    /// Refetches `domain`'s policy without holding up the delivery (once at a time).
    fn refresh_in_background(self: &Arc<Self>, resolver: &MxResolver, domain: &str) {
        if !self.refreshing.lock().unwrap_or_else(PoisonError::into_inner).insert(domain.to_owned()) {
            return;
        }
        let (this, resolver, domain) = (Arc::clone(self), resolver.clone(), domain.to_owned());
        let span = info_span!("mta_sts_refresh", %domain);
        tokio::spawn(
            async move {
                let lookup_id = match resolver.txt(&format!("_mta-sts.{domain}")).await {
                    TxtAnswer::Found(records) => record_id(&records).ok(),
                    _ => None,
                };
                if let Some(id) = lookup_id.filter(|_| this.may_fetch(&domain))
                    && let Err(reason) = this.fetch(&resolver, &domain, &id).await
                {
                    debug!(%reason, "background MTA-STS refresh failed; the cached policy stays");
                }
                this.refreshing.lock().unwrap_or_else(PoisonError::into_inner).remove(&domain);
            }
            .instrument(span),
        );
    }

    /// At most one fetch per domain per [`MIN_REFETCH_INTERVAL`].
    fn may_fetch(&self, domain: &str) -> bool {
        let mut last = self.last_fetch.lock().unwrap_or_else(PoisonError::into_inner);
        if last.len() >= MAX_CACHED_POLICIES {
            last.retain(|_, at| at.elapsed() < MIN_REFETCH_INTERVAL);
        }
        if last.len() >= MAX_CACHED_POLICIES {
            // More domains fetched within a minute than the bound: forget them all (the
            // cost is extra fetches, never a weaker policy).
            last.clear();
        }
        match last.get(domain) {
            Some(at) if at.elapsed() < MIN_REFETCH_INTERVAL => false,
            _ => {
                last.insert(domain.to_owned(), Instant::now());
                true
            }
        }
    }

    fn store(&self, domain: &str, policy: CachedPolicy) {
        let snapshot = {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if !cache.contains_key(domain) && cache.len() >= MAX_CACHED_POLICIES {
                // Room is made from expired and `none` policies only: whoever can make the
                // edge fetch many policies must not push out a domain's enforced one.
                let now = unix_now();
                cache.retain(|_, c| c.is_fresh(now) && c.policy.mode != Mode::None);
                if cache.len() >= MAX_CACHED_POLICIES {
                    warn!(%domain, "MTA-STS cache full of unexpired policies; this one is used but not kept");
                    return;
                }
            }
            cache.insert(domain.to_owned(), policy);
            StoredCache { policies: cache.clone() }
        };
        let text = toml::to_string(&snapshot).unwrap_or_default();
        if let Err(error) = write_atomic(&self.path, text.as_bytes(), 0o644) {
            warn!(%error, "cannot save the MTA-STS policy cache");
        }
    }
}

/// RFC 8461 §4.2: the MX host's certificate chains to a WebPKI root (`roots`), is
/// current, and names `host`.
pub fn verify_mx_certificate(chain: &[Vec<u8>], host: &str, roots: &rustls::RootCertStore) -> Result<(), String> {
    let ders: Vec<CertificateDer<'_>> = chain.iter().map(|c| CertificateDer::from(c.as_slice())).collect();
    let leaf = ders.first().ok_or("the server presented no certificate")?;
    let end_entity = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("unreadable certificate: {e:?}"))?;
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &roots.roots,
            ders.get(1..).unwrap_or_default(),
            rustls::pki_types::UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| format!("certificate not valid under the WebPKI: {e:?}"))?;
    let name = rustls::pki_types::ServerName::try_from(host).map_err(|_| format!("{host} is not a host name"))?;
    end_entity.verify_is_valid_for_subject_name(&name).map_err(|_| format!("the certificate does not name {host}"))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredCache {
    #[serde(default)]
    policies: BTreeMap<String, CachedPolicy>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

const HTTPS_PORT: u16 = 443;
/// Fetches per domain are at least this far apart.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Domains whose policy is cached at once.
pub const MAX_CACHED_POLICIES: usize = 10_000;
