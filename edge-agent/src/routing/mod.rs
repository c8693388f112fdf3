//! Where a recipient's mail goes next: send connector selection and DNS (MX) routing.

pub mod dns;

use domainsec_model::{AddressSpace, Domain, DomainPattern, SendConnector};

use crate::apply::EdgeConfig;

/// The route for one recipient domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// An accepted domain no send connector names explicitly: the local maildir.
    Local,
    /// Through this send connector.
    Connector(&'a SendConnector),
    /// No send connector covers the domain (permanent, 5.4.4).
    Unroutable,
}

/// Picks the route for `domain`: for the organization's accepted domains only a
/// connector that names them explicitly (an internal smart host) counts — a `*`
/// connector would send the organization's own mail back to its own MX — else
/// the local maildir; for other domains the connector whose address space
/// matches most specifically (`woodgrovebank.com` beats `*.com` beats `*`).
pub fn route<'a>(config: &'a EdgeConfig, domain: &Domain) -> Route<'a> {
    let accepted = config.accepted_domains.iter().any(|pattern| pattern.covers(domain));
    let best = config
        .send_connectors
        .iter()
        .filter_map(|connector| specificity(connector, domain).map(|score| (score, connector)))
        .filter(|(score, _)| !accepted || *score > ANY)
        .max_by_key(|(score, _)| *score)
        .map(|(_, connector)| connector);
    match (best, accepted) {
        (Some(connector), _) => Route::Connector(connector),
        (None, true) => Route::Local,
        (None, false) => Route::Unroutable,
    }
}

/// Score of `*`.
const ANY: (u8, usize) = (0, 0);

/// How specifically a connector's address spaces match: exact beats a
/// subdomain pattern, a longer parent beats a shorter one, `*` comes last.
fn specificity(connector: &SendConnector, domain: &Domain) -> Option<(u8, usize)> {
    connector
        .address_spaces
        .iter()
        .filter_map(|space| match space {
            AddressSpace::Any => Some(ANY),
            AddressSpace::Domain(pattern) if pattern.covers(domain) => Some(match pattern {
                DomainPattern::Exact(d) => (2, d.as_str().split('.').count()),
                DomainPattern::WithSubdomains(d) => (1, d.as_str().split('.').count()),
            }),
            AddressSpace::Domain(_) => None,
        })
        .max()
}

#[cfg(test)]
mod tests {
    use domainsec_model::{MessageSize, ObjectName, ProtocolLoggingLevel, Routing, SmartHost, TransportConfig};

    use super::*;

    fn connector(name: &str, spaces: &[&str]) -> SendConnector {
        SendConnector {
            name: ObjectName::parse(name).unwrap(),
            address_spaces: spaces.iter().map(|s| AddressSpace::parse(s).unwrap()).collect(),
            routing: Routing::Dns,
            fqdn: None,
            domain_secure_enabled: false,
            dane_enabled: true,
            mta_sts_enabled: true,
            protocol_logging_level: ProtocolLoggingLevel::None,
            source_edges: vec![ObjectName::parse("mail1").unwrap()],
            max_message_size: MessageSize::DEFAULT,
        }
    }

    fn config(connectors: Vec<SendConnector>) -> EdgeConfig {
        EdgeConfig {
            version: 1,
            fqdn: Domain::parse("mail1.contoso.com").unwrap(),
            transport: TransportConfig::default(),
            accepted_domains: vec![DomainPattern::parse("contoso.com").unwrap()],
            send_connectors: connectors,
            receive_connectors: vec![],
            trusted_roots: vec![],
            organization_domains: vec![],
        }
    }

    fn routed<'a>(config: &'a EdgeConfig, domain: &str) -> Route<'a> {
        route(config, &Domain::parse(domain).unwrap())
    }

    #[test]
    fn the_most_specific_address_space_wins() {
        let config = config(vec![
            connector("Internet", &["*"]),
            connector("Banks", &["*.woodgrovebank.com"]),
            connector("Woodgrove", &["woodgrovebank.com"]),
        ]);
        let name = |route: Route<'_>| match route {
            Route::Connector(c) => c.name.to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(name(routed(&config, "woodgrovebank.com")), "Woodgrove");
        assert_eq!(name(routed(&config, "us.woodgrovebank.com")), "Banks");
        assert_eq!(name(routed(&config, "fabrikam.com")), "Internet");
    }

    #[test]
    fn accepted_domains_go_local_unless_a_connector_names_them() {
        let mut config = config(vec![connector("Internet", &["*"])]);
        assert_eq!(routed(&config, "contoso.com"), Route::Local);
        let mut internal = connector("ToHub", &["contoso.com"]);
        internal.routing = Routing::SmartHosts(vec![SmartHost::parse("10.0.0.5").unwrap()]);
        config.send_connectors.push(internal);
        assert!(matches!(routed(&config, "contoso.com"), Route::Connector(c) if c.name.as_str() == "ToHub"));
    }

    #[test]
    fn a_domain_no_connector_covers_is_unroutable() {
        let config = config(vec![connector("Woodgrove", &["woodgrovebank.com"])]);
        assert_eq!(routed(&config, "fabrikam.com"), Route::Unroutable);
    }
}
