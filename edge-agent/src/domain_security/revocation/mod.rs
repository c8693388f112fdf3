//! Revocation by CRL: fetched over HTTP (through a proxy where configured), cached until `nextUpdate`.
//!
//! [`CrlCache::crls_for`] returns the CRLs for a partner's chain, ready for rustls-webpki;
//! the signature and revocation checks themselves happen when the chain is verified:
//!
//! ```ignore
//! let crls = cache.crls_for(&chain).await?;
//! let crl_refs: Vec<webpki::CertRevocationList<'static>> = crls.into_iter().map(Into::into).collect();
//! let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crl_refs.iter().collect();
//! let revocation = match webpki::RevocationOptionsBuilder::new(&crl_refs) {
//!     Ok(builder) => Some(builder.with_depth(webpki::RevocationCheckDepth::Chain).build()),
//!     Err(_) => None, // a chain of one self-signed certificate: nothing to check
//! };
//! ```
//!
//! Only `http://` distribution points are fetched: CRLs are signed, so HTTP is the norm. `https://` (which would need a TLS
//! client and its own revocation checks), `ldap://` and `file://` points are
//! [`RevocationError::Unsupported`].
//!
//! # Layout
//! - `proxy`: [`ProxySettings`] (the paper's `proxycfg -p proxy "<local>"`).
//! - `distribution_points`: reading a chain's CRL distribution points.
//! - `fetch`: one download with hyper, and decoding the CRL.
//! - `cache`: the per-URL cache, single-flight fetches and background refresh.

mod cache;
mod distribution_points;
mod fetch;
mod path;
mod proxy;

#[cfg(test)]
mod tests;

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, SystemTime},
};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use webpki::OwnedCertRevocationList;

use cache::{Clock, Lookup, Shared, Source};
use distribution_points::ChainCertificate;
use fetch::CrlUrl;
pub use path::{CrlIssuer, RevocationPath};
pub use proxy::{ProxyAddress, ProxySettings};

/// How CRLs are fetched and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationSettings {
    /// Direct, or through an HTTP proxy.
    pub proxy: ProxySettings,
    /// The longest one download may take, connection included.
    pub fetch_timeout: Duration,
    /// A cached CRL is refreshed in the background this long before its nextUpdate.
    pub refresh_before: Duration,
    /// The largest CRL accepted, in bytes.
    pub max_crl_size: usize,
    /// The longest a CRL is kept, however far away its nextUpdate: a CA that
    /// revokes early is heard within this time.
    pub max_cache_age: Duration,
}

/// What revocation checking found for one certificate chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// A CRL could not be fetched or read: a transient failure (the caller answers 4xx / keeps the message queued).
    #[error("CRL {url} is unavailable: {reason}")]
    Unavailable {
        /// The distribution point.
        url: String,
        /// What went wrong: connection refused, HTTP status, timeout, not a CRL, expired.
        reason: String,
    },
    /// A distribution point we cannot use (`ldap://`, `https://`, `file://`, malformed), named for `dsctl cert verify`.
    #[error("CRL distribution point {url} is not supported: only http:// CRLs are fetched")]
    Unsupported {
        /// The distribution point as the certificate gives it.
        url: String,
    },
    /// The certificate names no CRL distribution point: the caller decides (we treat it
    /// like [`RevocationError::Unavailable`], revocation status unknown).
    #[error("certificate {subject} has no CRL distribution point")]
    NoDistributionPoint {
        /// The certificate's subject, `CN=…`.
        subject: String,
    },
    /// Bad proxy setting.
    #[error("bad CRL proxy setting {value:?}: {reason}")]
    BadProxy {
        /// The setting as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate of the chain cannot be parsed, so its distribution points are unknown.
    #[error("certificate {position} of the chain cannot be read: {reason}")]
    Certificate {
        /// 1 for the leaf, 2 for its issuer, …
        position: usize,
        /// The parser's complaint.
        reason: String,
    },
}

/// Figures for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevocationStats {
    /// Successful CRL downloads.
    pub fetches: u64,
    /// Failed CRL downloads (connection, HTTP status, timeout, unreadable or expired CRL).
    pub fetch_failures: u64,
    /// Lookups answered from the cache.
    pub cache_hits: u64,
}

/// A cache of CRLs by URL, shared by every session (cheap Clone).
#[derive(Clone)]
pub struct CrlCache {
    shared: Arc<Shared>,
}

// === impl RevocationSettings ===

impl Default for RevocationSettings {
    fn default() -> Self {
        Self {
            proxy: ProxySettings::default(),
            fetch_timeout: Duration::from_secs(10),
            refresh_before: Duration::from_secs(5 * 60),
            max_crl_size: 10 * 1024 * 1024,
            max_cache_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}

// === impl CrlCache ===

impl CrlCache {
    /// An empty cache using the system clock.
    pub fn new(settings: RevocationSettings) -> Self {
        Self::with_clock(settings, Arc::new(SystemTime::now))
    }

    fn with_clock(settings: RevocationSettings, clock: Clock) -> Self {
        Self { shared: Arc::new(Shared::new(settings, clock)) }
    }

    /// Replaces the proxy settings (they arrive with each config snapshot); fetches
    /// already running keep the old ones.
    pub fn set_proxy(&self, proxy: ProxySettings) {
        self.shared.set_proxy(proxy);
    }

    /// The CRLs for every certificate of a validated `path` but its trust anchor:
    /// for each certificate, the first of its `http://` CRL distribution points
    /// that answers with a CRL its issuer signed, from the cache while fresh.
    /// Certificates sharing a CRL get it once. Must run inside a tokio runtime
    /// (background refreshes are spawned).
    pub async fn crls_for(&self, path: &RevocationPath) -> Result<Vec<OwnedCertRevocationList>, RevocationError> {
        let mut crls = Vec::new();
        let mut used = HashSet::new();
        for entry in &path.entries {
            let Some(issuer) = &entry.issuer else { continue };
            let points = entry.certificate.http_points()?;
            if points.iter().any(|url| used.contains(&(url.as_str(), issuer))) {
                continue;
            }
            let (url, lookup) = self.lookup_any(&entry.certificate, points, issuer).await?;
            used.insert((url.as_str(), issuer));
            crls.push(lookup.crl.crl);
        }
        Ok(crls)
    }

    /// For `dsctl cert verify`: one line per certificate of `chain`, e.g.
    /// `revocation: CN=mail1.woodgrovebank.com: CRL http://pki.example/issuing.crl fetched (next update 2026-11-30T10:00:00Z)`.
    pub async fn describe(&self, path: &RevocationPath) -> Vec<String> {
        let mut lines = Vec::with_capacity(path.entries.len());
        for entry in &path.entries {
            let line = self.describe_one(&entry.certificate, entry.issuer.as_ref()).await;
            lines.push(format!("revocation: {}: {line}", entry.certificate.subject));
        }
        lines
    }

    /// Figures for metrics: fetches (successful), fetch failures, cache hits.
    pub fn stats(&self) -> RevocationStats {
        self.shared.stats()
    }

    /// The first of `points` whose CRL can be had; else the first failure.
    async fn lookup_any<'a>(
        &self,
        certificate: &ChainCertificate,
        points: &'a [CrlUrl],
        issuer: &CrlIssuer,
    ) -> Result<(&'a CrlUrl, Lookup), RevocationError> {
        let mut first_error = None;
        for url in points {
            match self.shared.lookup(url, issuer).await {
                Ok(lookup) => return Ok((url, lookup)),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error
            .unwrap_or_else(|| RevocationError::NoDistributionPoint { subject: certificate.subject.clone() }))
    }

    async fn describe_one(&self, certificate: &ChainCertificate, issuer: Option<&CrlIssuer>) -> String {
        let Some(issuer) = issuer.filter(|_| !certificate.root) else {
            return "self-signed root, no CRL to check".to_owned();
        };
        let points = match certificate.http_points() {
            Ok(points) => points,
            Err(RevocationError::Unsupported { url }) => {
                return format!("{url} unsupported (only http:// CRLs are fetched)");
            }
            Err(_) => return "no CRL distribution point".to_owned(),
        };
        match self.lookup_any(certificate, points, issuer).await {
            Ok((url, lookup)) => {
                let how = match lookup.source {
                    Source::Fetched => "fetched",
                    Source::Cached => "cached",
                };
                format!("CRL {url} {how} (next update {})", timestamp(lookup.crl.next_update))
            }
            Err(RevocationError::Unavailable { url, reason }) => format!("cannot fetch {url}: {reason}"),
            Err(error) => error.to_string(),
        }
    }
}

// === helpers ===

/// RFC 3339 in UTC, for reports and logs.
fn timestamp(time: SystemTime) -> String {
    let time = OffsetDateTime::from(time);
    time.format(&Rfc3339).unwrap_or_else(|_| time.to_string())
}
