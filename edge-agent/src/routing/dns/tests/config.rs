//! `[dns]` settings: TOML shape, defaults, and errors that name the field.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{static_mx, static_only};
use crate::routing::dns::{DnsConfigError, DnsSettings, MxResolver, RouteError};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    dns: DnsSettings,
}

fn error_of(settings: DnsSettings) -> String {
    MxResolver::new(settings).unwrap_err().to_string()
}

fn with_hosts(host: &str, entries: &[&str]) -> DnsSettings {
    let entries = entries.iter().map(|e| e.to_string()).collect();
    DnsSettings { hosts: BTreeMap::from([(host.to_owned(), entries)]), ..static_only() }
}

#[test]
fn parses_the_documented_toml_shape() {
    let config: Config = toml::from_str(
        r#"
        [dns]
        resolver = "127.0.0.1:5353"
        timeout = "2s"

        [dns.mx]
        "woodgrovebank.com" = [{ preference = 10, exchange = "mail1.woodgrovebank.com" }]

        [dns.hosts]
        "mail1.woodgrovebank.com" = ["127.0.0.1:2526", "::1"]
        "#,
    )
    .unwrap();
    let dns = config.dns;
    assert_eq!(dns.resolver, Some("127.0.0.1:5353".parse().unwrap()));
    assert_eq!(dns.timeout, Duration::from_secs(2));
    assert_eq!(dns.smtp_port, 25);
    assert!(!dns.static_only);
    assert_eq!(dns.mx["woodgrovebank.com"], [static_mx(10, "mail1.woodgrovebank.com")]);
    assert_eq!(dns.hosts["mail1.woodgrovebank.com"], ["127.0.0.1:2526", "::1"]);
}

#[test]
fn empty_section_takes_the_defaults() {
    let config: Config = toml::from_str("[dns]\n").unwrap();
    assert_eq!(config.dns.smtp_port, 25);
    assert_eq!(config.dns.timeout, Duration::from_secs(5));
    assert_eq!(config.dns.resolver, None);
}

#[test]
fn rejects_unknown_fields() {
    let error = toml::from_str::<Config>("[dns]\nresolvers = \"127.0.0.1:53\"\n").unwrap_err();
    assert!(error.to_string().contains("unknown field `resolvers`"), "{error}");
    let mx = "[dns.mx]\n\"a.example\" = [{ preference = 1, exchange = \"b.example\", weight = 2 }]\n";
    assert!(toml::from_str::<Config>(mx).is_err());
}

#[test]
fn rejects_host_entry_that_is_not_an_address() {
    assert_eq!(
        error_of(with_hosts("x", &["127.0.0.1", "127.0.0.1:abc"])),
        r#"dns.hosts."x": "127.0.0.1:abc" is not an IP address or ip:port"#
    );
    assert_eq!(
        MxResolver::new(with_hosts("x", &["mail.example"])).unwrap_err(),
        DnsConfigError::BadAddress { host: "x".to_owned(), entry: "mail.example".to_owned() }
    );
    assert!(MxResolver::new(with_hosts("x", &["127.0.0.1:0"])).is_err());
    assert_eq!(error_of(with_hosts("x", &[])), r#"dns.hosts."x": no addresses listed"#);
}

#[test]
fn rejects_names_that_are_not_domains() {
    assert_eq!(
        error_of(with_hosts("mail host.example", &["127.0.0.1"])),
        r#"dns.hosts."mail host.example": not a domain name"#
    );
    let settings = DnsSettings {
        mx: BTreeMap::from([("a..example".to_owned(), vec![static_mx(10, "mx.example")])]),
        ..static_only()
    };
    assert_eq!(error_of(settings), r#"dns.mx."a..example": not a domain name"#);
    let settings = DnsSettings {
        mx: BTreeMap::from([("a.example".to_owned(), vec![static_mx(10, "[127.0.0.1]")])]),
        ..static_only()
    };
    assert_eq!(error_of(settings), r#"dns.mx."a.example": exchange "[127.0.0.1]" is not a host name"#);
}

#[test]
fn rejects_null_mx_next_to_other_exchanges() {
    let settings = DnsSettings {
        mx: BTreeMap::from([("a.example".to_owned(), vec![static_mx(0, "."), static_mx(10, "mx.a.example")])]),
        ..static_only()
    };
    assert_eq!(error_of(settings), r#"dns.mx."a.example": a null MX (".") must be the domain's only MX"#);
}

#[test]
fn rejects_names_listed_twice_in_different_case() {
    let settings = DnsSettings {
        hosts: BTreeMap::from([
            ("Mail.example".to_owned(), vec!["127.0.0.1".to_owned()]),
            ("mail.example.".to_owned(), vec!["127.0.0.2".to_owned()]),
        ]),
        ..static_only()
    };
    let error = error_of(settings);
    assert!(error.starts_with("dns.hosts."), "{error}");
    assert!(error.ends_with("listed twice (names are case-insensitive)"), "{error}");
}

#[test]
fn rejects_zero_port_and_timeout() {
    let zero_port = DnsSettings { smtp_port: 0, ..static_only() };
    assert_eq!(error_of(zero_port), "dns.smtp_port: 0 is not a port");
    let zero_timeout = DnsSettings { timeout: Duration::ZERO, ..static_only() };
    assert_eq!(error_of(zero_timeout), "dns.timeout: must be more than zero");
}

#[test]
fn route_errors_carry_their_enhanced_status() {
    let domain = || "a.example".to_owned();
    let cases = [
        (RouteError::NullMx { domain: domain() }, "5.1.10", true),
        (RouteError::NoSuchDomain { domain: domain() }, "5.1.2", true),
        (RouteError::NoRoute { domain: domain() }, "5.4.4", true),
        (RouteError::Temporary { domain: domain(), reason: "request timed out".to_owned() }, "4.4.3", false),
    ];
    for (error, status, permanent) in cases {
        assert_eq!(error.enhanced_status(), status, "{error}");
        assert_eq!(error.is_permanent(), permanent, "{error}");
    }
}

#[test]
fn dane_believes_only_a_loopback_resolver_unless_told_otherwise() {
    use std::net::SocketAddr;

    use crate::routing::dns::DnssecMode;
    let with = |resolver: &str, dnssec: DnssecMode| {
        let settings =
            DnsSettings { resolver: Some(resolver.parse::<SocketAddr>().unwrap()), dnssec, ..DnsSettings::default() };
        MxResolver::new(settings).unwrap().validating().map(|stub| stub.server()).map_err(str::to_owned)
    };
    assert_eq!(with("127.0.0.1:53", DnssecMode::Auto).unwrap(), "127.0.0.1:53".parse::<SocketAddr>().unwrap());
    let remote = with("192.0.2.53:53", DnssecMode::Auto).unwrap_err();
    assert!(remote.contains("not on a loopback address") && remote.contains("trust-resolver"), "{remote}");
    assert!(with("192.0.2.53:53", DnssecMode::TrustResolver).is_ok());
    assert!(with("127.0.0.1:53", DnssecMode::Off).unwrap_err().contains("dns.dnssec = \"off\""));
    let static_only = MxResolver::new(static_only()).unwrap();
    assert!(static_only.validating().unwrap_err().contains("static_only"));
}
