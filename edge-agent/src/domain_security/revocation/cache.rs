//! The CRL cache: one slot per URL. A slot's CRL is used until its nextUpdate; one fetch
//! at a time per URL (late callers wait for it and share its outcome); a background
//! refresh starts `refresh_before` nextUpdate while callers keep the cached copy.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use tokio::sync::watch;
use tracing::{Instrument, debug, info_span, warn};

use super::{
    CrlIssuer, ProxySettings, RevocationError, RevocationSettings, RevocationStats,
    fetch::{self, CrlUrl, FetchedCrl},
};

/// Where "now" comes from: the system clock, or a test's.
pub(super) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// State shared by every clone of a [`CrlCache`](super::CrlCache).
pub(super) struct Shared {
    settings: RevocationSettings,
    proxy: RwLock<ProxySettings>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    clock: Clock,
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
    hits: AtomicU64,
    /// Finished fetch attempts, so tests can wait for a background refresh.
    pub(super) attempts: watch::Sender<u64>,
}

/// A CRL and how this lookup got it.
pub(super) struct Lookup {
    pub(super) crl: FetchedCrl,
    pub(super) source: Source,
}

/// Whether a lookup downloaded the CRL or found it in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Fetched,
    Cached,
}

/// One URL: `fetching` is held for the whole download.
#[derive(Default)]
struct Slot {
    fetching: tokio::sync::Mutex<()>,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    cached: Option<FetchedCrl>,
    /// Finished attempts: a caller that waited for `fetching` sees whether one ran meanwhile.
    attempts: u64,
    last_failure: Option<RevocationError>,
    refreshing: bool,
    /// No background refresh before this (one attempt per [`REFRESH_INTERVAL`]).
    refresh_not_before: Option<SystemTime>,
}

// === impl Shared ===

impl Shared {
    pub(super) fn new(settings: RevocationSettings, clock: Clock) -> Self {
        Self {
            proxy: RwLock::new(settings.proxy.clone()),
            settings,
            slots: Mutex::default(),
            clock,
            fetches: AtomicU64::new(0),
            fetch_failures: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            attempts: watch::Sender::new(0),
        }
    }

    pub(super) fn set_proxy(&self, proxy: ProxySettings) {
        *self.proxy.write().unwrap_or_else(PoisonError::into_inner) = proxy;
    }

    pub(super) fn stats(&self) -> RevocationStats {
        RevocationStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            fetch_failures: self.fetch_failures.load(Ordering::Relaxed),
            cache_hits: self.hits.load(Ordering::Relaxed),
        }
    }

    /// The CRL at `url`: the cached copy before its nextUpdate, else a fetch (or the
    /// outcome of the fetch another caller was running).
    pub(super) async fn lookup(self: &Arc<Self>, url: &CrlUrl, issuer: &CrlIssuer) -> Result<Lookup, RevocationError> {
        let slot = self.slot(url, issuer);
        let seen = {
            let mut state = slot.lock();
            let now = (self.clock)();
            if let Some(hit) = self.fresh(&state, now) {
                self.refresh_if_due(&slot, &mut state, url, issuer, now);
                return Ok(hit);
            }
            state.attempts
        };
        let _fetching = slot.fetching.lock().await;
        {
            let state = slot.lock();
            if state.attempts != seen {
                if let Some(hit) = self.fresh(&state, (self.clock)()) {
                    return Ok(hit);
                }
                if let Some(failure) = &state.last_failure {
                    return Err(failure.clone());
                }
            }
        }
        let crl = self.fetch_into(&slot, url, issuer).await?;
        Ok(Lookup { crl, source: Source::Fetched })
    }

    /// The slot for `url` as signed by `issuer`, made on first use; unused, empty or
    /// expired slots are dropped when there are many.
    fn slot(&self, url: &CrlUrl, issuer: &CrlIssuer) -> Arc<Slot> {
        let key = format!("{} {}", issuer.cache_key(), url.as_str());
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(&key) {
            return Arc::clone(slot);
        }
        if slots.len() >= MAX_SLOTS {
            let now = (self.clock)();
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1 || slot.lock().cached.as_ref().is_some_and(|crl| now < crl.keep_until)
            });
        }
        Arc::clone(slots.entry(key).or_default())
    }

    /// A cache hit, counted, when the slot's CRL is before its nextUpdate.
    fn fresh(&self, state: &SlotState, now: SystemTime) -> Option<Lookup> {
        let crl = state.cached.as_ref().filter(|crl| now < crl.keep_until)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(Lookup { crl: crl.clone(), source: Source::Cached })
    }

    /// Starts one background refresh when the CRL is within `refresh_before` of nextUpdate.
    fn refresh_if_due(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        state: &mut SlotState,
        url: &CrlUrl,
        issuer: &CrlIssuer,
        now: SystemTime,
    ) {
        if state.refreshing || state.refresh_not_before.is_some_and(|not_before| now < not_before) {
            return;
        }
        if !state.cached.as_ref().is_some_and(|crl| self.refresh_due(crl, now)) {
            return;
        }
        state.refreshing = true;
        let shared = Arc::clone(self);
        let slot = Arc::clone(slot);
        let url = url.clone();
        let issuer = issuer.clone();
        let span = info_span!("crl_refresh", url = %url);
        tokio::spawn(
            async move {
                let _refreshing = Refreshing(Arc::clone(&slot));
                let _fetching = slot.fetching.lock().await;
                let now = (shared.clock)();
                let still_due = slot.lock().cached.as_ref().is_none_or(|crl| shared.refresh_due(crl, now));
                if !still_due {
                    return;
                }
                if let Err(error) = shared.fetch_into(&slot, &url, &issuer).await {
                    warn!(%error, "CRL refresh failed; the cached CRL is used until its nextUpdate");
                }
            }
            .instrument(span),
        );
    }

    fn refresh_due(&self, crl: &FetchedCrl, now: SystemTime) -> bool {
        crl.keep_until.checked_sub(self.settings.refresh_before).is_none_or(|due| now >= due)
    }

    /// Fetches `url` (the caller holds `slot.fetching`) and records the outcome. A
    /// CRL that `issuer` did not sign is a failure like an unreachable server: not
    /// cached, fetched again next time.
    async fn fetch_into(&self, slot: &Slot, url: &CrlUrl, issuer: &CrlIssuer) -> Result<FetchedCrl, RevocationError> {
        let proxy = self.proxy.read().unwrap_or_else(PoisonError::into_inner).clone();
        let fetched = fetch::fetch(url, &self.settings, proxy.proxy_for(url.host()), issuer).await;
        let now = (self.clock)();
        let result = fetched
            .and_then(|crl| not_expired(crl, now))
            .map(|mut crl| {
                crl.keep_until = crl.next_update.min(now + self.settings.max_cache_age);
                crl
            })
            .map_err(|reason| RevocationError::Unavailable { url: url.as_str().to_owned(), reason });
        {
            let mut state = slot.lock();
            state.attempts += 1;
            state.refresh_not_before = now.checked_add(REFRESH_INTERVAL);
            match &result {
                Ok(crl) => {
                    debug!(url = %url, next_update = %super::timestamp(crl.next_update), "fetched CRL");
                    self.fetches.fetch_add(1, Ordering::Relaxed);
                    state.cached = Some(crl.clone());
                    state.last_failure = None;
                }
                Err(error) => {
                    self.fetch_failures.fetch_add(1, Ordering::Relaxed);
                    state.last_failure = Some(error.clone());
                }
            }
        }
        self.attempts.send_modify(|attempts| *attempts += 1);
        result
    }
}

// === impl Slot ===

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Clears `refreshing` however the refresh task ends.
struct Refreshing(Arc<Slot>);

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.lock().refreshing = false;
    }
}

// === helpers ===

/// A CRL already past its nextUpdate is of no use: the CA has not published a newer one.
fn not_expired(crl: FetchedCrl, now: SystemTime) -> Result<FetchedCrl, String> {
    if now < crl.next_update {
        return Ok(crl);
    }
    Err(format!("the CRL served expired at {} (its nextUpdate)", super::timestamp(crl.next_update)))
}

/// At most one background refresh attempt per URL in this time.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Slots kept before unused ones are dropped.
const MAX_SLOTS: usize = 1024;
