//! Checking a snapshot before the edge takes it: every value parsed into the
//! directory's types again (the edge trusts no input), and every receive
//! connector's address available on this host. A snapshot that fails is refused
//! (NACK) and the edge keeps its last good configuration.

use std::{
    collections::HashSet,
    net::{SocketAddr, TcpListener},
};

use domainsec_model::{
    AddressSpace, AuthMechanism, Binding, CrlProxy, Domain, DomainPattern, IpRange, MessageSize, ObjectName,
    PermissionGroup, ProtocolLoggingLevel, ProxyBypass, ReceiveConnector, Routing, SendConnector, SmartHost,
    TransportConfig, parse_list,
};
use proto::edge as pb;

/// A snapshot the edge can run.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeConfig {
    /// The organization config version.
    pub version: u64,
    /// This edge's FQDN.
    pub fqdn: Domain,
    /// The secure-domain lists.
    pub transport: TransportConfig,
    /// Accepted domains.
    pub accepted_domains: Vec<DomainPattern>,
    /// Send connectors that list this edge.
    pub send_connectors: Vec<SendConnector>,
    /// This edge's receive connectors.
    pub receive_connectors: Vec<ReceiveConnector>,
    /// DER of the CA certificates the organization trusts here, besides the platform's.
    pub trusted_roots: Vec<Vec<u8>>,
    /// The organization's own domains (its edges' parent domains and its accepted
    /// domains): an `Authentication-Results` from outside naming one is scrubbed.
    pub organization_domains: Vec<Domain>,
}

/// Why a snapshot cannot be applied; the text goes back to the controller in the NACK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

/// Parses and checks a snapshot.
pub fn check(snapshot: &pb::Snapshot) -> Result<EdgeConfig, ApplyError> {
    check_with(snapshot, &HashSet::new())
}

/// Parses and checks a snapshot on a running edge: `listening` holds the
/// addresses the relay already serves, which are available to it by definition.
pub fn check_with(snapshot: &pb::Snapshot, listening: &HashSet<SocketAddr>) -> Result<EdgeConfig, ApplyError> {
    let edge = snapshot.edge.as_ref().ok_or_else(|| ApplyError("snapshot names no edge".into()))?;
    let edge_name = ObjectName::parse(&edge.name).map_err(|e| field("edge.name", &edge.name, e))?;
    let transport = snapshot.transport_config.clone().unwrap_or_default();
    let config = EdgeConfig {
        version: snapshot.version,
        fqdn: Domain::parse(&edge.fqdn).map_err(|e| field("edge.fqdn", &edge.fqdn, e))?,
        transport: TransportConfig {
            tls_send_domain_secure_list: list(
                "tls_send_domain_secure_list",
                &transport.tls_send_domain_secure_list,
                DomainPattern::parse,
            )?,
            tls_receive_domain_secure_list: list(
                "tls_receive_domain_secure_list",
                &transport.tls_receive_domain_secure_list,
                DomainPattern::parse,
            )?,
            crl_proxy: match transport.crl_proxy.as_str() {
                "" => None,
                value => Some(CrlProxy::parse(value).map_err(|e| field("crl_proxy", value, e))?),
            },
            crl_proxy_bypass: list("crl_proxy_bypass", &transport.crl_proxy_bypass, ProxyBypass::parse)?,
        },
        accepted_domains: list("accepted_domains", &snapshot.accepted_domains, DomainPattern::parse)?,
        send_connectors: snapshot
            .send_connectors
            .iter()
            .map(|c| send_connector(c, &edge_name))
            .collect::<Result<_, _>>()?,
        receive_connectors: snapshot
            .receive_connectors
            .iter()
            .map(|c| receive_connector(c, &edge_name))
            .collect::<Result<_, _>>()?,
        trusted_roots: Vec::new(),
        organization_domains: list("organization_domains", &snapshot.organization_domains, Domain::parse)?,
    };
    let mut config = config;
    config.organization_domains.extend(config.accepted_domains.iter().map(|pattern| pattern.domain().clone()));
    config.organization_domains.sort();
    config.organization_domains.dedup();
    for (index, root) in snapshot.trusted_roots.iter().enumerate() {
        let der = pem::parse(root)
            .ok()
            .filter(|block| block.tag() == "CERTIFICATE")
            .map(pem::Pem::into_contents)
            .ok_or_else(|| ApplyError(format!("trusted_roots[{index}]: not a PEM certificate")))?;
        x509_parser::parse_x509_certificate(&der)
            .map_err(|e| ApplyError(format!("trusted_roots[{index}]: not a certificate: {e}")))?;
        config.trusted_roots.push(der);
    }
    for connector in &config.receive_connectors {
        for binding in connector.bindings.iter().filter(|b| !listening.contains(&b.socket_addr())) {
            check_address(binding.socket_addr()).map_err(|e| {
                ApplyError(format!("receive connector {}: cannot listen on {binding}: {e}", connector.name))
            })?;
        }
    }
    Ok(config)
}

fn send_connector(connector: &pb::SendConnector, edge: &ObjectName) -> Result<SendConnector, ApplyError> {
    let at = |f: &str| format!("send connector {}: {f}", connector.name);
    let smart_hosts = list(&at("smart_hosts"), &connector.smart_hosts, SmartHost::parse)?;
    let parsed = SendConnector {
        name: ObjectName::parse(&connector.name).map_err(|e| field("send connector name", &connector.name, e))?,
        address_spaces: list(&at("address_spaces"), &connector.address_spaces, AddressSpace::parse)?,
        routing: if smart_hosts.is_empty() { Routing::Dns } else { Routing::SmartHosts(smart_hosts) },
        fqdn: optional_domain(&at("fqdn"), &connector.fqdn)?,
        domain_secure_enabled: connector.domain_secure_enabled,
        dane_enabled: !connector.dane_disabled,
        mta_sts_enabled: !connector.mta_sts_disabled,
        protocol_logging_level: word::<ProtocolLoggingLevel>(
            &at("protocol_logging_level"),
            &connector.protocol_logging_level,
        )?,
        source_edges: vec![edge.clone()],
        max_message_size: size(&at("max_message_size"), connector.max_message_size)?,
    };
    parsed.check().map_err(|e| ApplyError(format!("send connector {}: {e}", connector.name)))?;
    Ok(parsed)
}

fn receive_connector(connector: &pb::ReceiveConnector, edge: &ObjectName) -> Result<ReceiveConnector, ApplyError> {
    let at = |f: &str| format!("receive connector {}: {f}", connector.name);
    let parsed = ReceiveConnector {
        edge: edge.clone(),
        name: ObjectName::parse(&connector.name).map_err(|e| field("receive connector name", &connector.name, e))?,
        bindings: list(&at("bindings"), &connector.bindings, Binding::parse)?,
        remote_ip_ranges: list(&at("remote_ip_ranges"), &connector.remote_ip_ranges, IpRange::parse)?,
        fqdn: optional_domain(&at("fqdn"), &connector.fqdn)?,
        auth_mechanisms: connector
            .auth_mechanisms
            .iter()
            .map(|m| word::<AuthMechanism>(&at("auth_mechanisms"), m))
            .collect::<Result<_, _>>()?,
        domain_secure_enabled: connector.domain_secure_enabled,
        permission_groups: connector
            .permission_groups
            .iter()
            .map(|g| word::<PermissionGroup>(&at("permission_groups"), g))
            .collect::<Result<_, _>>()?,
        protocol_logging_level: word::<ProtocolLoggingLevel>(
            &at("protocol_logging_level"),
            &connector.protocol_logging_level,
        )?,
        max_message_size: size(&at("max_message_size"), connector.max_message_size)?,
    };
    parsed.check().map_err(|e| ApplyError(format!("receive connector {}: {e}", connector.name)))?;
    Ok(parsed)
}

/// The address must exist on this host (port conflicts are the listener's concern).
fn check_address(address: SocketAddr) -> Result<(), std::io::Error> {
    if address.ip().is_unspecified() {
        return Ok(());
    }
    TcpListener::bind(SocketAddr::new(address.ip(), 0)).map(drop)
}

fn list<T, E: std::fmt::Display>(
    name: &str,
    values: &[String],
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, ApplyError> {
    parse_list(name, values, parse).map_err(|e| ApplyError(e.to_string()))
}

fn optional_domain(name: &str, value: &str) -> Result<Option<Domain>, ApplyError> {
    if value.is_empty() {
        return Ok(None);
    }
    Domain::parse(value).map(Some).map_err(|e| field(name, value, e))
}

fn word<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ApplyError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| field(name, value, e))
}

fn size(name: &str, bytes: u64) -> Result<MessageSize, ApplyError> {
    MessageSize::new(bytes).map_err(|e| field(name, &bytes.to_string(), e))
}

fn field(name: &str, value: &str, error: impl std::fmt::Display) -> ApplyError {
    ApplyError(format!("{name} {value:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> pb::Snapshot {
        pb::Snapshot {
            version: 7,
            organization: "Contoso".into(),
            edge: Some(pb::EdgeIdentity { name: "mail1".into(), fqdn: "mail1.contoso.com".into() }),
            transport_config: Some(pb::TransportConfig {
                crl_proxy: String::new(),
                crl_proxy_bypass: vec![],
                tls_send_domain_secure_list: vec!["woodgrovebank.com".into()],
                tls_receive_domain_secure_list: vec!["woodgrovebank.com".into()],
            }),
            accepted_domains: vec!["contoso.com".into()],
            send_connectors: vec![pb::SendConnector {
                name: "Internet".into(),
                address_spaces: vec!["*".into()],
                smart_hosts: vec![],
                fqdn: String::new(),
                domain_secure_enabled: true,
                dane_disabled: false,
                mta_sts_disabled: false,
                protocol_logging_level: "verbose".into(),
                max_message_size: 10 * 1024 * 1024,
            }],
            receive_connectors: vec![pb::ReceiveConnector {
                name: "Inet".into(),
                bindings: vec!["127.0.0.1:2525".into()],
                remote_ip_ranges: vec![],
                fqdn: String::new(),
                auth_mechanisms: vec!["tls".into()],
                domain_secure_enabled: true,
                permission_groups: vec!["anonymous-users".into(), "partners".into()],
                protocol_logging_level: "none".into(),
                max_message_size: 10 * 1024 * 1024,
            }],
            controller_certificates: vec![],
            trusted_roots: vec![],
            organization_domains: vec!["contoso-edge.net".to_owned()],
        }
    }

    #[test]
    fn a_sound_snapshot_applies() {
        let config = check(&sample()).unwrap();
        assert_eq!(config.version, 7);
        assert!(config.transport.requires_secure_send(&Domain::parse("woodgrovebank.com").unwrap()));
        assert_eq!(config.receive_connectors[0].bindings[0].to_string(), "127.0.0.1:2525");
        let domains: Vec<String> = config.organization_domains.iter().map(ToString::to_string).collect();
        let accepted = config.accepted_domains[0].domain().to_string();
        assert!(domains.contains(&"contoso-edge.net".to_owned()) && domains.contains(&accepted), "{domains:?}");
    }

    #[test]
    fn a_malformed_organization_domain_refuses_the_snapshot() {
        let mut snapshot = sample();
        snapshot.organization_domains = vec!["not a domain".to_owned()];
        let error = check(&snapshot).unwrap_err();
        assert!(error.0.contains("organization_domains"), "{error}");
    }

    #[test]
    fn an_address_not_on_this_host_is_refused() {
        let mut snapshot = sample();
        // TEST-NET-1 (RFC 5737) is never assigned to a host.
        snapshot.receive_connectors[0].bindings = vec!["192.0.2.1:25".into()];
        let error = check(&snapshot).unwrap_err();
        assert!(error.0.starts_with("receive connector Inet: cannot listen on 192.0.2.1:25:"), "{error}");
    }

    #[test]
    fn values_are_parsed_again_at_the_edge() {
        let mut snapshot = sample();
        snapshot.accepted_domains = vec!["contoso..com".into()];
        assert_eq!(check(&snapshot).unwrap_err().0, "accepted_domains[0] \"contoso..com\": empty label");
        let mut snapshot = sample();
        snapshot.send_connectors[0].protocol_logging_level = "chatty".into();
        assert!(check(&snapshot).unwrap_err().0.contains("protocol_logging_level \"chatty\""));
        let mut snapshot = sample();
        if let Some(transport) = snapshot.transport_config.as_mut() {
            transport.crl_proxy = "ftp://proxy".into();
        }
        assert!(check(&snapshot).unwrap_err().0.starts_with("crl_proxy \"ftp://proxy\": must be http://host:port"));
        let mut snapshot = sample();
        if let Some(transport) = snapshot.transport_config.as_mut() {
            transport.crl_proxy = "http://proxy:3128".into();
            transport.crl_proxy_bypass = vec!["<local>".into()];
        }
        let config = check(&snapshot).unwrap();
        assert_eq!(config.transport.crl_proxy.unwrap().to_string(), "http://proxy:3128");
    }
}
