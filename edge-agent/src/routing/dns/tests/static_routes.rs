//! Routing from the static tables alone (`static_only`: any DNS use would fail the test).

use std::collections::BTreeMap;

use super::{hop, static_mx, static_only};
use crate::routing::dns::{DnsSettings, MxResolver, RouteError, StaticMx};

fn resolver(mx: &[(&str, Vec<StaticMx>)], hosts: &[(&str, &[&str])]) -> MxResolver {
    let settings = DnsSettings {
        mx: mx.iter().map(|(d, records)| (d.to_string(), records.clone())).collect(),
        hosts: hosts
            .iter()
            .map(|(h, entries)| (h.to_string(), entries.iter().map(|e| e.to_string()).collect()))
            .collect::<BTreeMap<_, _>>(),
        ..static_only()
    };
    MxResolver::new(settings).unwrap()
}

#[tokio::test]
async fn orders_static_mx_hosts_by_preference() {
    let resolver = resolver(
        &[(
            "woodgrovebank.com",
            vec![static_mx(20, "mail2.woodgrovebank.com"), static_mx(10, "mail1.woodgrovebank.com")],
        )],
        &[("mail1.woodgrovebank.com", &["127.0.0.1:2526"]), ("mail2.woodgrovebank.com", &["127.0.0.2:2526"])],
    );
    let hops = resolver.resolve_domain("woodgrovebank.com").await.unwrap();
    assert_eq!(
        hops,
        [
            hop("mail1.woodgrovebank.com", 10, &["127.0.0.1:2526"]),
            hop("mail2.woodgrovebank.com", 20, &["127.0.0.2:2526"]),
        ]
    );
}

#[tokio::test]
async fn keeps_every_host_of_equal_preference_in_shuffled_order() {
    let resolver = resolver(
        &[("a.example", vec![static_mx(10, "mx1.a.example"), static_mx(10, "mx2.a.example")])],
        &[("mx1.a.example", &["127.0.0.1"]), ("mx2.a.example", &["127.0.0.2"])],
    );
    let mut firsts = Vec::new();
    for _ in 0..200 {
        let hops = resolver.resolve_domain("a.example").await.unwrap();
        let mut hosts: Vec<_> = hops.iter().map(|h| h.host.as_str()).collect();
        firsts.push(hosts[0].to_owned());
        hosts.sort_unstable();
        assert_eq!(hosts, ["mx1.a.example", "mx2.a.example"]);
        if firsts.iter().any(|f| f != &firsts[0]) {
            return;
        }
    }
    panic!("200 resolutions all put {} first", firsts[0]);
}

#[tokio::test]
async fn a_host_listed_twice_keeps_its_best_preference() {
    let resolver = resolver(
        &[("a.example", vec![static_mx(30, "mx.a.example"), static_mx(5, "MX.a.example.")])],
        &[("mx.a.example", &["127.0.0.1"])],
    );
    let hops = resolver.resolve_domain("a.example").await.unwrap();
    assert_eq!(hops, [hop("mx.a.example", 5, &["127.0.0.1:25"])]);
}

#[tokio::test]
async fn static_null_mx_refuses_the_domain() {
    let resolver = resolver(&[("nomail.example", vec![static_mx(0, ".")])], &[]);
    assert_eq!(
        resolver.resolve_domain("nomail.example").await,
        Err(RouteError::NullMx { domain: "nomail.example".to_owned() })
    );
}

#[tokio::test]
async fn domain_listed_only_in_hosts_is_its_own_mx() {
    let resolver = resolver(&[], &[("fabrikam.example", &["127.0.0.1:2526"])]);
    let hops = resolver.resolve_domain("fabrikam.example").await.unwrap();
    assert_eq!(hops, [hop("fabrikam.example", 0, &["127.0.0.1:2526"])]);
}

#[tokio::test]
async fn host_entries_without_a_port_use_smtp_port() {
    let settings = DnsSettings {
        smtp_port: 2525,
        hosts: BTreeMap::from([(
            "mail1.woodgrovebank.com".to_owned(),
            vec!["127.0.0.1:2526".to_owned(), "::1".to_owned(), "[::2]:2527".to_owned()],
        )]),
        ..static_only()
    };
    let resolver = MxResolver::new(settings).unwrap();
    let hops = resolver.resolve_domain("mail1.woodgrovebank.com").await.unwrap();
    assert_eq!(hops, [hop("mail1.woodgrovebank.com", 0, &["127.0.0.1:2526", "[::1]:2525", "[::2]:2527"])]);
}

#[tokio::test]
async fn names_ignore_case_and_a_trailing_dot() {
    let resolver = resolver(
        &[("WoodgroveBank.COM.", vec![static_mx(10, "Mail1.WoodgroveBank.com.")])],
        &[("MAIL1.woodgrovebank.com", &["127.0.0.1"])],
    );
    let hops = resolver.resolve_domain("woodgrovebank.Com.").await.unwrap();
    assert_eq!(hops, [hop("mail1.woodgrovebank.com", 10, &["127.0.0.1:25"])]);
}

#[tokio::test]
async fn static_only_miss_is_temporary() {
    let resolver = resolver(&[], &[]);
    assert_eq!(
        resolver.resolve_domain("contoso.example").await,
        Err(RouteError::Temporary {
            domain: "contoso.example".to_owned(),
            reason: "not in the static routing table".to_owned(),
        })
    );
    let error = resolver.resolve_host("relay.contoso.example", 25).await.unwrap_err();
    assert!(!error.is_permanent(), "{error}");
}

#[tokio::test]
async fn static_mx_host_without_an_entry_is_temporary_under_static_only() {
    let resolver = resolver(&[("a.example", vec![static_mx(10, "mx.a.example")])], &[]);
    assert_eq!(
        resolver.resolve_domain("a.example").await,
        Err(RouteError::Temporary {
            domain: "a.example".to_owned(),
            reason: "mx.a.example: not in the static routing table".to_owned(),
        })
    );
}

#[tokio::test]
async fn names_that_cannot_exist_are_no_such_domain() {
    let resolver = resolver(&[], &[]);
    for name in ["", "a..example", "bad name.example", "[127.0.0.1"] {
        let error = resolver.resolve_domain(name).await.unwrap_err();
        assert!(matches!(error, RouteError::NoSuchDomain { .. }), "{name:?}: {error}");
    }
}

#[tokio::test]
async fn smart_host_ip_literals_are_used_as_given() {
    let resolver = resolver(&[], &[]);
    for (literal, address) in [
        ("127.0.0.1", "127.0.0.1:587"),
        ("[127.0.0.1]", "127.0.0.1:587"),
        ("::1", "[::1]:587"),
        ("[IPv6:::1]", "[::1]:587"),
    ] {
        let next = resolver.resolve_host(literal, 587).await.unwrap();
        assert_eq!(next.addresses, [address.parse().unwrap()], "{literal}");
        assert_eq!(next.preference, 0);
    }
}

#[tokio::test]
async fn smart_host_names_use_the_hosts_table() {
    let resolver = resolver(&[], &[("relay.example", &["127.0.0.1", "127.0.0.2:2526"])]);
    let next = resolver.resolve_host("Relay.Example.", 587).await.unwrap();
    assert_eq!(next, hop("relay.example", 0, &["127.0.0.1:587", "127.0.0.2:2526"]));
}
