//! CRL fetching, caching, proxying and reporting against loopback HTTP servers, and the
//! returned CRLs checked with rustls-webpki.

#![allow(clippy::unwrap_used)]

mod pki;
mod server;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use rustls::pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use tokio::time::timeout;
use webpki::{
    CertRevocationList, EndEntityCert, KeyUsage, OwnedCertRevocationList, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};

use self::{
    pki::{LEAF_NAME, TestPki},
    server::{Reply, TestServer, closed_port},
};
use super::{
    CrlCache, ProxyAddress, ProxySettings, RevocationError, RevocationPath, RevocationSettings, RevocationStats,
    timestamp,
};

// === caching ===

#[tokio::test]
async fn fetches_once_and_serves_the_second_call_from_the_cache() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let chain = pki.chain(&[&server.url()]);
    let cache = cache(&clock);

    assert_eq!(cache.crls_for(&path(&chain)).await.unwrap().len(), 1);
    clock.advance(Duration::from_secs(600));
    assert_eq!(cache.crls_for(&path(&chain)).await.unwrap().len(), 1);

    assert_eq!(server.request_lines(), vec!["GET /ca.crl HTTP/1.1".to_owned()]);
    assert_eq!(cache.stats(), RevocationStats { fetches: 1, fetch_failures: 0, cache_hits: 1 });
}

#[tokio::test]
async fn concurrent_callers_for_one_url_cause_one_fetch() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let chain = pki.chain(&[&server.url()]);
    let cache = cache(&clock);
    server.hold();

    let callers = spawn_callers(&cache, &chain, 8);
    server.wait_for_requests(1).await;
    server.release();
    for caller in callers {
        timeout(DEADLINE, caller).await.unwrap().unwrap().unwrap();
    }

    assert_eq!(server.request_count(), 1);
    assert_eq!(cache.stats(), RevocationStats { fetches: 1, fetch_failures: 0, cache_hits: 7 });
}

#[tokio::test]
async fn concurrent_callers_share_the_failure_of_one_fetch() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::status(500)).await;
    let chain = pki.chain(&[&server.url()]);
    let cache = cache(&clock);
    server.hold();

    let callers = spawn_callers(&cache, &chain, 4);
    server.wait_for_requests(1).await;
    server.release();
    for caller in callers {
        let error = timeout(DEADLINE, caller).await.unwrap().unwrap().unwrap_err();
        assert!(matches!(error, RevocationError::Unavailable { .. }), "{error}");
    }

    assert_eq!(server.request_count(), 1);
    assert_eq!(cache.stats().fetch_failures, 1);
}

#[tokio::test]
async fn crl_near_next_update_is_refreshed_in_the_background() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let chain = pki.chain(&[&server.url()]);
    let cache = cache(&clock);
    cache.crls_for(&path(&chain)).await.unwrap();

    // Four minutes before nextUpdate (refresh_before is five): answered from the cache
    // while the refresh waits for the server.
    clock.advance(HOUR - Duration::from_secs(240));
    server.set_reply(Reply::crl(pki.crl(false, clock.now(), HOUR)));
    server.hold();
    timeout(DEADLINE, cache.crls_for(&path(&chain))).await.unwrap().unwrap();
    server.wait_for_requests(2).await;
    timeout(DEADLINE, cache.crls_for(&path(&chain))).await.unwrap().unwrap();
    server.release();
    wait_for_attempts(&cache, 2).await;

    // Past the first CRL's nextUpdate the refreshed one serves, without another fetch.
    clock.advance(Duration::from_secs(600));
    let lines = cache.describe(&path(&chain)).await;
    assert!(lines[0].contains(" cached (next update "), "{lines:?}");
    assert_eq!(server.request_count(), 2);
    assert_eq!(cache.stats(), RevocationStats { fetches: 2, fetch_failures: 0, cache_hits: 3 });
}

#[tokio::test]
async fn expired_crl_is_fetched_again() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let chain = pki.chain(&[&server.url()]);
    let cache = cache(&clock);
    cache.crls_for(&path(&chain)).await.unwrap();

    clock.advance(2 * HOUR);
    server.set_reply(Reply::crl(pki.crl(false, clock.now(), HOUR)));
    let lines = cache.describe(&path(&chain)).await;

    assert!(lines[0].contains(" fetched (next update "), "{lines:?}");
    assert_eq!(server.request_count(), 2);
    assert_eq!(cache.stats(), RevocationStats { fetches: 2, fetch_failures: 0, cache_hits: 0 });
}

#[tokio::test]
async fn expired_crl_with_the_server_down_is_unavailable() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let url = server.url();
    let chain = pki.chain(&[&url]);
    let cache = cache(&clock);
    cache.crls_for(&path(&chain)).await.unwrap();

    server.stop().await;
    clock.advance(HOUR);
    let error = cache.crls_for(&path(&chain)).await.unwrap_err();

    assert_eq!(error, RevocationError::Unavailable { url, reason: "connection refused".to_owned() });
}

#[tokio::test]
async fn crl_served_past_its_next_update_is_unavailable() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let stale = pki.crl(false, clock.now() - 2 * HOUR, HOUR);
    let server = TestServer::start(Reply::crl(stale)).await;
    let cache = cache(&clock);

    let error = cache.crls_for(&path(&pki.chain(&[&server.url()]))).await.unwrap_err();

    assert!(error.to_string().contains("expired at"), "{error}");
}

// === fetch failures ===

#[tokio::test]
async fn server_down_is_unavailable_naming_the_url() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let url = format!("http://{}/ca.crl", closed_port().await);
    let cache = cache(&clock);

    let error = cache.crls_for(&path(&pki.chain(&[&url]))).await.unwrap_err();

    assert_eq!(error, RevocationError::Unavailable { url: url.clone(), reason: "connection refused".to_owned() });
    assert_eq!(error.to_string(), format!("CRL {url} is unavailable: connection refused"));
    assert_eq!(cache.stats(), RevocationStats { fetches: 0, fetch_failures: 1, cache_hits: 0 });
}

#[tokio::test]
async fn not_found_is_unavailable() {
    let error = fetch_error(Reply::status(404), RevocationSettings::default()).await;
    assert!(error.contains("HTTP status 404"), "{error}");
}

#[tokio::test]
async fn garbage_body_is_unavailable() {
    let error = fetch_error(Reply::crl(b"<html>not a CRL</html>".to_vec()), RevocationSettings::default()).await;
    assert!(error.contains("not a CRL"), "{error}");
}

#[tokio::test]
async fn crl_over_the_size_limit_is_unavailable() {
    let pki = TestPki::new();
    let crl = pki.crl(false, SystemTime::now(), HOUR);
    let settings = RevocationSettings { max_crl_size: 64, ..RevocationSettings::default() };
    let error = fetch_error(Reply::crl(crl), settings).await;
    assert!(error.contains("larger than the 64-byte limit"), "{error}");
}

#[tokio::test]
async fn silent_server_times_out() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::status(500)).await;
    server.hold();
    let settings = RevocationSettings { fetch_timeout: Duration::from_millis(200), ..RevocationSettings::default() };
    let cache = CrlCache::with_clock(settings, clock.clock());

    let error = cache.crls_for(&path(&pki.chain(&[&server.url()]))).await.unwrap_err();

    assert!(error.to_string().ends_with("no answer within 200ms"), "{error}");
}

#[tokio::test]
async fn pem_wrapped_crl_is_accepted() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::crl(pki.crl_pem(clock.now(), HOUR).into_bytes())).await;
    let cache = cache(&clock);

    assert_eq!(cache.crls_for(&path(&pki.chain(&[&server.url()]))).await.unwrap().len(), 1);
}

// === proxy ===

#[tokio::test]
async fn fetches_through_the_proxy_with_an_absolute_uri() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let origin = TestServer::start(Reply::status(500)).await;
    let proxy = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let cache = cache(&clock);
    cache.set_proxy(ProxySettings::parse(&format!("http://{}", proxy.addr), "*.contoso.com").unwrap());

    cache.crls_for(&path(&pki.chain(&[&origin.url()]))).await.unwrap();

    assert_eq!(proxy.request_lines(), vec![format!("GET {} HTTP/1.1", origin.url())]);
    assert_eq!(origin.request_count(), 0);
}

#[tokio::test]
async fn bypassed_address_is_fetched_directly() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let origin = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let proxy = TestServer::start(Reply::status(502)).await;
    let cache = cache(&clock);
    cache.set_proxy(ProxySettings::parse(&format!("http://{}", proxy.addr), "<local>; 127.0.0.1").unwrap());

    cache.crls_for(&path(&pki.chain(&[&origin.url()]))).await.unwrap();

    assert_eq!(origin.request_lines(), vec!["GET /ca.crl HTTP/1.1".to_owned()]);
    assert_eq!(proxy.request_count(), 0);
}

#[tokio::test]
async fn dotless_name_bypasses_the_proxy_with_local() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let origin = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let proxy = TestServer::start(Reply::status(502)).await;
    let url = format!("http://localhost:{}/ca.crl", origin.addr.port());
    let cache = cache(&clock);
    cache.set_proxy(ProxySettings::parse(&format!("http://{}", proxy.addr), "<local>").unwrap());

    cache.crls_for(&path(&pki.chain(&[&url]))).await.unwrap();

    assert_eq!(origin.request_count(), 1);
    assert_eq!(proxy.request_count(), 0);
}

#[tokio::test]
async fn proxy_failure_names_the_proxy() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let proxy = closed_port().await;
    let url = "http://crl.woodgrovebank.com/ca.crl";
    let cache = cache(&clock);
    cache.set_proxy(ProxySettings::parse(&proxy.to_string(), "").unwrap());

    let lines = cache.describe(&path(&pki.chain(&[url]))).await;

    let expected = format!("cannot fetch {url}: connection refused (through proxy http://{proxy})");
    assert_eq!(lines[0], format!("revocation: CN={LEAF_NAME}: {expected}"));
}

#[test]
fn proxy_settings_parse_direct_and_http_proxies() {
    assert_eq!(ProxySettings::parse("none", "").unwrap(), ProxySettings::default());
    assert_eq!(ProxySettings::parse(" ", " ; ").unwrap(), ProxySettings::default());
    let settings = ProxySettings::parse("http://Proxy:3128/", "<local>; *.contoso.com, .Fabrikam.com").unwrap();
    assert_eq!(settings.proxy, Some(ProxyAddress { host: "proxy".to_owned(), port: 3128 }));
    assert_eq!(settings.bypass, ["<local>", "*.contoso.com", ".fabrikam.com"]);
    let bare = ProxySettings::parse("proxy", "").unwrap().proxy.unwrap();
    assert_eq!(bare.to_string(), "http://proxy:80");
    let v6 = ProxySettings::parse("http://[::1]:8080", "").unwrap().proxy.unwrap();
    assert_eq!((v6.host.as_str(), v6.port, v6.to_string()), ("::1", 8080, "http://[::1]:8080".to_owned()));
}

#[test]
fn proxy_settings_refuse_bad_values_naming_them() {
    for value in ["ftp://x", "http://", "proxy:abc", "http://proxy:0", "http://user@proxy:3128", "http://p:1/crl"] {
        let error = ProxySettings::parse(value, "").unwrap_err();
        assert!(matches!(&error, RevocationError::BadProxy { value: named, .. } if named == value), "{error:?}");
        assert!(error.to_string().contains(value), "{error}");
    }
    let error = ProxySettings::parse("proxy:3128", "http://crl.contoso.com/").unwrap_err();
    assert!(error.to_string().contains("http://crl.contoso.com/"), "{error}");
}

#[test]
fn bypass_list_matches_names_suffixes_and_local() {
    let settings = ProxySettings::parse("proxy:3128", "<local>;*.contoso.com;.fabrikam.com;10.0.0.1").unwrap();
    for direct in ["pki", "PKI.", "crl.contoso.com", "a.b.contoso.com", "crl.fabrikam.com", "10.0.0.1"] {
        assert_eq!(settings.proxy_for(direct), None, "{direct}");
    }
    for proxied in ["contoso.com", "badcontoso.com", "crl.woodgrovebank.com", "10.0.0.10", "::1"] {
        assert!(settings.proxy_for(proxied).is_some(), "{proxied}");
    }
    assert_eq!(ProxySettings::default().proxy_for("crl.contoso.com"), None);
}

// === distribution points ===

#[tokio::test]
async fn ldap_distribution_point_is_unsupported() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let ldap = "ldap:///CN=Woodgrove%20Bank%20Root%20CA,CN=CDP?certificateRevocationList?base";
    let chain = pki.chain(&[ldap]);
    let cache = cache(&clock);

    assert_eq!(cache.crls_for(&path(&chain)).await.unwrap_err(), RevocationError::Unsupported { url: ldap.to_owned() });
    let lines = cache.describe(&path(&chain)).await;
    assert_eq!(lines[0], format!("revocation: CN={LEAF_NAME}: {ldap} unsupported (only http:// CRLs are fetched)"));
}

#[tokio::test]
async fn http_point_is_used_when_ldap_comes_first() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let chain = pki.chain(&["ldap:///CN=CDP?certificateRevocationList", &server.url()]);

    assert_eq!(cache(&clock).crls_for(&path(&chain)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn certificate_without_distribution_points_has_none() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let chain = pki.chain(&[]);
    let cache = cache(&clock);

    let error = cache.crls_for(&path(&chain)).await.unwrap_err();
    assert_eq!(error, RevocationError::NoDistributionPoint { subject: format!("CN={LEAF_NAME}") });
    assert_eq!(
        cache.describe(&path(&chain)).await[0],
        format!("revocation: CN={LEAF_NAME}: no CRL distribution point")
    );
}

#[tokio::test]
async fn self_signed_root_alone_needs_no_crl() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    assert!(cache(&clock).crls_for(&path(&[pki.root()])).await.unwrap().is_empty());
}

#[tokio::test]
async fn unreadable_certificate_is_named_by_position() {
    let pki = TestPki::new();
    let chain = vec![pki.leaf(&[]), CertificateDer::from(b"garbage".to_vec())];

    let error = RevocationPath::from_chain(&chain).unwrap_err();

    assert!(matches!(error, RevocationError::Certificate { position: 2, .. }), "{error:?}");
}

// === forged CRLs ===

#[tokio::test]
async fn a_crl_signed_by_another_key_under_the_issuers_name_is_refused_and_not_cached() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let impostor = TestPki::new(); // same name, another key
    let server = TestServer::start(Reply::crl(impostor.crl(true, clock.now(), 1000 * HOUR))).await;
    let chain = pki.chain(&[&server.url()]);
    let cache = cache(&clock);

    let error = cache.crls_for(&path(&chain)).await.unwrap_err();
    match &error {
        RevocationError::Unavailable { reason, .. } => assert!(reason.contains("signature"), "{reason}"),
        other => panic!("expected a transient failure, got {other:?}"),
    }
    // Not cached: the next check fetches again, and the genuine CRL is then believed.
    server.set_reply(Reply::crl(pki.crl(false, clock.now(), HOUR)));
    assert_eq!(cache.crls_for(&path(&chain)).await.unwrap().len(), 1);
    assert_eq!(server.request_lines().len(), 2);
}

#[tokio::test]
async fn a_crl_from_an_issuer_of_another_name_is_refused() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let other = TestPki::named("Fabrikam Root CA");
    let server = TestServer::start(Reply::crl(other.crl(false, clock.now(), HOUR))).await;

    let error = cache(&clock).crls_for(&path(&pki.chain(&[&server.url()]))).await.unwrap_err();

    match error {
        RevocationError::Unavailable { reason, .. } => assert!(reason.contains("issuer"), "{reason}"),
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_crl_verified_for_one_issuer_is_not_served_for_another() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let other = TestPki::new();
    let server = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let url = server.url();
    let cache = cache(&clock);
    cache.crls_for(&path(&pki.chain(&[&url]))).await.unwrap();

    // A certificate of another CA pointing at the same URL gets no cached CRL:
    // the cache is keyed by issuer too, and the fetched CRL fails its signature.
    let error = cache.crls_for(&path(&other.chain(&[&url]))).await.unwrap_err();

    assert!(matches!(error, RevocationError::Unavailable { .. }), "{error:?}");
    assert_eq!(server.request_lines().len(), 2);
}

#[tokio::test]
async fn a_crl_is_kept_no_longer_than_the_cache_age_limit() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::crl(pki.crl(false, clock.now(), 1000 * HOUR))).await;
    let chain = pki.chain(&[&server.url()]);
    let cache = cache(&clock);
    cache.crls_for(&path(&chain)).await.unwrap();

    clock.advance(RevocationSettings::default().max_cache_age + HOUR);
    cache.crls_for(&path(&chain)).await.unwrap();

    assert_eq!(server.request_lines().len(), 2, "fetched again after max_cache_age despite a far nextUpdate");
}

// === reports ===

#[tokio::test]
async fn describe_gives_one_line_per_certificate_fetched_then_cached() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::crl(pki.crl(false, clock.now(), HOUR))).await;
    let url = server.url();
    let chain = pki.chain(&[&url]);
    let cache = cache(&clock);
    let next_update = timestamp(whole_seconds(clock.now() + HOUR));

    let first = cache.describe(&path(&chain)).await;
    let second = cache.describe(&path(&chain)).await;

    let leaf = format!("revocation: CN={LEAF_NAME}: CRL {url}");
    let root = "revocation: CN=Woodgrove Bank Root CA: self-signed root, no CRL to check".to_owned();
    assert_eq!(first, [format!("{leaf} fetched (next update {next_update})"), root.clone()]);
    assert_eq!(second, [format!("{leaf} cached (next update {next_update})"), root]);
}

#[tokio::test]
async fn describe_names_the_fetch_failure() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let url = format!("http://{}/ca.crl", closed_port().await);

    let lines = cache(&clock).describe(&path(&pki.chain(&[&url]))).await;

    assert_eq!(lines[0], format!("revocation: CN={LEAF_NAME}: cannot fetch {url}: connection refused"));
    assert_eq!(lines.len(), 2);
}

// === rustls-webpki ===

#[tokio::test]
async fn returned_crls_work_with_rustls_webpki() {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(Reply::crl(pki.crl(true, clock.now(), HOUR))).await;
    let chain = pki.chain(&[&server.url()]);

    let revoking = cache(&clock).crls_for(&path(&chain)).await.unwrap();
    assert_eq!(verify(&chain, revoking), Err(webpki::Error::CertRevoked));

    server.set_reply(Reply::crl(pki.crl(false, clock.now(), HOUR)));
    let empty = cache(&clock).crls_for(&path(&chain)).await.unwrap();
    assert_eq!(verify(&chain, empty), Ok(()));
}

// === helpers ===

/// A test chain in path order (each certificate issued by the next, a root last).
fn path(chain: &[CertificateDer<'_>]) -> RevocationPath {
    RevocationPath::from_chain(chain).unwrap()
}

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<SystemTime>>);

impl TestClock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(SystemTime::now())))
    }

    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    fn clock(&self) -> super::Clock {
        let clock = self.clone();
        Arc::new(move || clock.now())
    }
}

fn cache(clock: &TestClock) -> CrlCache {
    let settings = RevocationSettings { fetch_timeout: DEADLINE / 2, ..RevocationSettings::default() };
    CrlCache::with_clock(settings, clock.clock())
}

/// The reason a fetch with `reply` and `settings` fails for.
async fn fetch_error(reply: Reply, settings: RevocationSettings) -> String {
    let (pki, clock) = (TestPki::new(), TestClock::new());
    let server = TestServer::start(reply).await;
    let cache = CrlCache::with_clock(settings, clock.clock());
    match cache.crls_for(&path(&pki.chain(&[&server.url()]))).await.unwrap_err() {
        RevocationError::Unavailable { url, reason } if url == server.url() => reason,
        other => panic!("expected Unavailable for {}, got {other:?}", server.url()),
    }
}

fn spawn_callers(
    cache: &CrlCache,
    chain: &[CertificateDer<'static>],
    count: usize,
) -> Vec<tokio::task::JoinHandle<Result<Vec<OwnedCertRevocationList>, RevocationError>>> {
    (0..count)
        .map(|_| {
            let (cache, chain) = (cache.clone(), chain.to_vec());
            tokio::spawn(async move { cache.crls_for(&path(&chain)).await })
        })
        .collect()
}

/// Waits (with a deadline) until `count` fetch attempts have finished.
async fn wait_for_attempts(cache: &CrlCache, count: u64) {
    let mut attempts = cache.shared.attempts.subscribe();
    timeout(DEADLINE, attempts.wait_for(|attempts| *attempts >= count)).await.unwrap().unwrap();
}

/// The chain `[leaf, root]` verified as a server certificate, revocation checked with `crls`.
fn verify(chain: &[CertificateDer<'static>], crls: Vec<OwnedCertRevocationList>) -> Result<(), webpki::Error> {
    let crls: Vec<CertRevocationList<'static>> = crls.into_iter().map(CertRevocationList::from).collect();
    let crl_refs: Vec<&CertRevocationList<'_>> = crls.iter().collect();
    let revocation = RevocationOptionsBuilder::new(&crl_refs)
        .unwrap()
        .with_depth(RevocationCheckDepth::Chain)
        .with_status_policy(UnknownStatusPolicy::Deny)
        .build();
    let anchors = [webpki::anchor_from_trusted_cert(&chain[1]).unwrap()];
    let leaf = EndEntityCert::try_from(&chain[0]).unwrap();
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        UnixTime::now(),
        KeyUsage::server_auth(),
        Some(revocation),
        None,
    )
    .map(|_| ())
}

fn whole_seconds(time: SystemTime) -> SystemTime {
    let time = OffsetDateTime::from(time);
    SystemTime::from(time.replace_nanosecond(0).unwrap())
}

const HOUR: Duration = Duration::from_secs(3600);
const DEADLINE: Duration = Duration::from_secs(10);
