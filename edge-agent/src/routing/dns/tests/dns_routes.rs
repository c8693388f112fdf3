//! Routing through hickory against a loopback DNS server ([`FakeDns`]).

use std::collections::BTreeMap;
use std::time::Duration;

use super::fake_dns::{FakeDns, Zone};
use super::hop;
use crate::routing::dns::{DnsSettings, MxResolver, RouteError};

/// A resolver asking only `dns`, each test its own (no cache shared between tests).
fn resolver_for(dns: &FakeDns) -> MxResolver {
    MxResolver::new(settings_for(dns)).unwrap()
}

fn settings_for(dns: &FakeDns) -> DnsSettings {
    DnsSettings { resolver: Some(dns.addr), ..DnsSettings::default() }
}

#[tokio::test]
async fn orders_mx_hosts_by_preference_with_their_addresses() {
    let dns = FakeDns::start(
        Zone::default()
            .mx("woodgrove.example", 20, "mail2.woodgrove.example")
            .mx("woodgrove.example", 10, "Mail1.Woodgrove.example")
            .a("mail1.woodgrove.example", [127, 0, 0, 1])
            .aaaa("mail1.woodgrove.example", "::1".parse().unwrap())
            .a("mail2.woodgrove.example", [127, 0, 0, 2]),
    )
    .await;
    let hops = resolver_for(&dns).resolve_domain("WoodGrove.Example.").await.unwrap();
    assert_eq!(
        hops,
        [
            hop("mail1.woodgrove.example", 10, &["127.0.0.1:25", "[::1]:25"]),
            hop("mail2.woodgrove.example", 20, &["127.0.0.2:25"]),
        ]
    );
}

#[tokio::test]
async fn domain_without_mx_is_its_own_implicit_mx() {
    let dns = FakeDns::start(Zone::default().a("fabrikam.example", [127, 0, 0, 3])).await;
    let hops = resolver_for(&dns).resolve_domain("fabrikam.example").await.unwrap();
    assert_eq!(hops, [hop("fabrikam.example", 0, &["127.0.0.3:25"])]);
}

#[tokio::test]
async fn null_mx_record_refuses_the_domain() {
    let dns = FakeDns::start(Zone::default().mx("nomail.example", 0, ".")).await;
    assert_eq!(
        resolver_for(&dns).resolve_domain("nomail.example").await,
        Err(RouteError::NullMx { domain: "nomail.example".to_owned() })
    );
}

#[tokio::test]
async fn nxdomain_is_no_such_domain() {
    let dns = FakeDns::start(Zone::default()).await;
    assert_eq!(
        resolver_for(&dns).resolve_domain("missing.example").await,
        Err(RouteError::NoSuchDomain { domain: "missing.example".to_owned() })
    );
}

#[tokio::test]
async fn server_failure_is_temporary() {
    let dns = FakeDns::start(Zone::default().server_failure("broken.example")).await;
    let error = resolver_for(&dns).resolve_domain("broken.example").await.unwrap_err();
    assert!(matches!(error, RouteError::Temporary { .. }), "{error}");
    assert_eq!(error.enhanced_status(), "4.4.3");
}

#[tokio::test]
async fn unanswered_query_times_out_as_temporary() {
    let dns = FakeDns::start(Zone::default().silent("slow.example")).await;
    let settings = DnsSettings { timeout: Duration::from_millis(200), ..settings_for(&dns) };
    let error = MxResolver::new(settings).unwrap().resolve_domain("slow.example").await.unwrap_err();
    assert!(matches!(error, RouteError::Temporary { .. }), "{error}");
}

#[tokio::test]
async fn mx_hosts_without_addresses_are_no_route() {
    let dns =
        FakeDns::start(Zone::default().mx("a.example", 10, "gone.a.example").mx("a.example", 20, "a.example")).await;
    assert_eq!(
        resolver_for(&dns).resolve_domain("a.example").await,
        Err(RouteError::NoRoute { domain: "a.example".to_owned() })
    );
}

#[tokio::test]
async fn mx_hosts_failing_temporarily_defer_the_domain() {
    let dns =
        FakeDns::start(Zone::default().mx("a.example", 10, "broken.a.example").server_failure("broken.a.example"))
            .await;
    let error = resolver_for(&dns).resolve_domain("a.example").await.unwrap_err();
    let RouteError::Temporary { domain, reason } = error else {
        panic!("expected a temporary error, got {error}");
    };
    assert_eq!(domain, "a.example");
    assert!(reason.starts_with("broken.a.example: "), "{reason}");
}

#[tokio::test]
async fn skips_mx_hosts_whose_lookup_fails_when_another_has_addresses() {
    let dns = FakeDns::start(
        Zone::default()
            .mx("a.example", 10, "broken.a.example")
            .mx("a.example", 20, "backup.a.example")
            .server_failure("broken.a.example")
            .a("backup.a.example", [127, 0, 0, 4]),
    )
    .await;
    let hops = resolver_for(&dns).resolve_domain("a.example").await.unwrap();
    assert_eq!(hops, [hop("backup.a.example", 20, &["127.0.0.4:25"])]);
}

#[tokio::test]
async fn static_hosts_win_over_dns_for_mx_hosts() {
    let dns =
        FakeDns::start(Zone::default().mx("a.example", 10, "mx.a.example").a("mx.a.example", [192, 0, 2, 1])).await;
    let settings = DnsSettings {
        hosts: BTreeMap::from([("mx.a.example".to_owned(), vec!["127.0.0.1:2526".to_owned()])]),
        ..settings_for(&dns)
    };
    let hops = MxResolver::new(settings).unwrap().resolve_domain("a.example").await.unwrap();
    assert_eq!(hops, [hop("mx.a.example", 10, &["127.0.0.1:2526"])]);
    assert_eq!(dns.queries(), ["a.example MX"]);
}

#[tokio::test]
async fn smart_host_name_is_looked_up_at_the_given_port() {
    let dns = FakeDns::start(Zone::default().a("relay.example", [127, 0, 0, 5])).await;
    let resolver = resolver_for(&dns);
    let next = resolver.resolve_host("Relay.Example", 587).await.unwrap();
    assert_eq!(next, hop("relay.example", 0, &["127.0.0.5:587"]));
    assert_eq!(
        resolver.resolve_host("missing.example", 587).await,
        Err(RouteError::NoSuchDomain { domain: "missing.example".to_owned() })
    );
}
