//! The document's YAML/JSON shape: plain strings, lists and numbers, with unknown
//! fields refused. [`ConfigDocument::from_wire`] parses each value with the model's
//! parser and names the failing field by its path in the document
//! (`send_connectors[1].address_spaces[0]`).

use domainsec_model::{
    AddressSpace, AuthMechanism, Binding, CrlProxy, Domain, DomainPattern, InvalidField, IpRange, MessageSize,
    ObjectName, PermissionGroup, ProtocolLoggingLevel, ProxyBypass, ReceiveConnector, Routing, SendConnector,
    SmartHost, TransportConfig, parse_list, parse_set,
};
use serde::{Deserialize, Serialize};

use super::{ConfigDocument, EdgeEntry, SCHEMA, TrustedRootEntry};
use crate::ca_certificate::CaCertificate;

/// The whole document. Every section is required: a section left out would
/// otherwise read as "remove everything in it".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Document {
    schema: String,
    organization: String,
    transport: Transport,
    accepted_domains: Vec<String>,
    edges: Vec<Edge>,
    send_connectors: Vec<SendConnectorEntry>,
    receive_connectors: Vec<ReceiveConnectorEntry>,
    trusted_roots: Vec<TrustedRoot>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Transport {
    tls_send_domain_secure_list: Vec<String>,
    tls_receive_domain_secure_list: Vec<String>,
    /// `http://host:port`; absent or null: edges fetch CRLs directly.
    #[serde(default)]
    crl_proxy: Option<String>,
    #[serde(default)]
    crl_proxy_bypass: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Edge {
    name: String,
    fqdn: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendConnectorEntry {
    name: String,
    address_spaces: Vec<String>,
    /// Empty: route by DNS (MX).
    #[serde(default)]
    smart_hosts: Vec<String>,
    #[serde(default)]
    fqdn: Option<String>,
    #[serde(default)]
    domain_secure_enabled: bool,
    /// Written only when off (on is the default).
    #[serde(default = "on", skip_serializing_if = "is_on")]
    dane_enabled: bool,
    /// Written only when off (on is the default).
    #[serde(default = "on", skip_serializing_if = "is_on")]
    mta_sts_enabled: bool,
    #[serde(default = "no_logging")]
    protocol_logging_level: String,
    source_edges: Vec<String>,
    #[serde(default = "default_size")]
    max_message_size: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiveConnectorEntry {
    edge: String,
    name: String,
    bindings: Vec<String>,
    #[serde(default)]
    remote_ip_ranges: Vec<String>,
    #[serde(default)]
    fqdn: Option<String>,
    auth_mechanisms: Vec<String>,
    #[serde(default)]
    domain_secure_enabled: bool,
    permission_groups: Vec<String>,
    #[serde(default = "no_logging")]
    protocol_logging_level: String,
    #[serde(default = "default_size")]
    max_message_size: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedRoot {
    /// Written by export for people; checked against the certificate when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    /// Written by export for people; checked against the certificate when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    /// Only these edges; absent or null: every edge.
    #[serde(default)]
    edges: Option<Vec<String>>,
    certificate_pem: String,
}

// === impl ConfigDocument (wire form) ===

impl ConfigDocument {
    /// Parses the wire form: the schema, each value, then the rules across the
    /// document (with the author's indices), then sorts into canonical order.
    pub(super) fn from_wire(wire: Document) -> Result<Self, InvalidField> {
        if wire.schema != SCHEMA {
            return Err(InvalidField::new(
                "schema",
                wire.schema,
                format!(
                    "this controller applies {SCHEMA} documents only, never an older or another schema; \
                     export a fresh one with `dsctl config export`"
                ),
            ));
        }
        if wire.organization.trim().is_empty() {
            return Err(InvalidField::new("organization", "", "must name the organization the document is for"));
        }
        let mut document = Self {
            organization: wire.organization,
            transport: transport(wire.transport)?,
            accepted_domains: parse_set("accepted_domains", &wire.accepted_domains, false, DomainPattern::parse)?,
            edges: each(wire.edges, "edges", edge)?,
            send_connectors: each(wire.send_connectors, "send_connectors", send_connector)?,
            receive_connectors: each(wire.receive_connectors, "receive_connectors", receive_connector)?,
            trusted_roots: each(wire.trusted_roots, "trusted_roots", trusted_root)?,
        };
        document.check()?;
        document.canonicalize();
        Ok(document)
    }

    /// The wire form, as export writes it.
    pub(super) fn to_wire(&self) -> Document {
        Document {
            schema: SCHEMA.to_owned(),
            organization: self.organization.clone(),
            transport: Transport {
                tls_send_domain_secure_list: strings(&self.transport.tls_send_domain_secure_list),
                tls_receive_domain_secure_list: strings(&self.transport.tls_receive_domain_secure_list),
                crl_proxy: self.transport.crl_proxy.as_ref().map(ToString::to_string),
                crl_proxy_bypass: strings(&self.transport.crl_proxy_bypass),
            },
            accepted_domains: strings(&self.accepted_domains),
            edges: self.edges.iter().map(|e| Edge { name: e.name.to_string(), fqdn: e.fqdn.to_string() }).collect(),
            send_connectors: self.send_connectors.iter().map(send_connector_entry).collect(),
            receive_connectors: self.receive_connectors.iter().map(receive_connector_entry).collect(),
            trusted_roots: self
                .trusted_roots
                .iter()
                .map(|root| TrustedRoot {
                    sha256: Some(root.certificate.sha256.clone()),
                    subject: Some(root.certificate.subject.clone()),
                    edges: root.edges.as_deref().map(strings),
                    certificate_pem: root.certificate.certificate_pem.clone(),
                })
                .collect(),
        }
    }
}

/// Parses each entry of a section, prefixing errors with `section[index].`.
fn each<W, T>(
    entries: Vec<W>,
    section: &str,
    parse: impl Fn(W) -> Result<T, InvalidField>,
) -> Result<Vec<T>, InvalidField> {
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| parse(entry).map_err(|error| within(&format!("{section}[{index}]"), error)))
        .collect()
}

/// `error` with its field path under `prefix`.
fn within(prefix: &str, mut error: InvalidField) -> InvalidField {
    error.field = format!("{prefix}.{}", error.field);
    error
}

fn transport(wire: Transport) -> Result<TransportConfig, InvalidField> {
    let crl_proxy = match wire.crl_proxy.as_deref() {
        None | Some("" | "none") => None,
        Some(value) => Some(CrlProxy::parse(value).map_err(|e| InvalidField::new("transport.crl_proxy", value, e))?),
    };
    let config = TransportConfig {
        tls_send_domain_secure_list: parse_set(
            "transport.tls_send_domain_secure_list",
            &wire.tls_send_domain_secure_list,
            false,
            DomainPattern::parse,
        )?,
        tls_receive_domain_secure_list: parse_set(
            "transport.tls_receive_domain_secure_list",
            &wire.tls_receive_domain_secure_list,
            false,
            DomainPattern::parse,
        )?,
        crl_proxy,
        crl_proxy_bypass: parse_list("transport.crl_proxy_bypass", &wire.crl_proxy_bypass, ProxyBypass::parse)?,
    };
    domainsec_model::transport::check_secure_list_size(
        "transport.tls_send_domain_secure_list",
        &config.tls_send_domain_secure_list,
    )?;
    domainsec_model::transport::check_secure_list_size(
        "transport.tls_receive_domain_secure_list",
        &config.tls_receive_domain_secure_list,
    )?;
    Ok(config)
}

fn edge(wire: Edge) -> Result<EdgeEntry, InvalidField> {
    Ok(EdgeEntry { name: name("name", &wire.name)?, fqdn: domain("fqdn", &wire.fqdn)? })
}

fn send_connector(wire: SendConnectorEntry) -> Result<SendConnector, InvalidField> {
    let routing = if wire.smart_hosts.is_empty() {
        Routing::Dns
    } else {
        Routing::SmartHosts(parse_set("smart_hosts", &wire.smart_hosts, true, SmartHost::parse)?)
    };
    let connector = SendConnector {
        name: name("name", &wire.name)?,
        address_spaces: parse_set("address_spaces", &wire.address_spaces, true, AddressSpace::parse)?,
        routing,
        fqdn: wire.fqdn.as_deref().map(|fqdn| domain("fqdn", fqdn)).transpose()?,
        domain_secure_enabled: wire.domain_secure_enabled,
        dane_enabled: wire.dane_enabled,
        mta_sts_enabled: wire.mta_sts_enabled,
        protocol_logging_level: word("protocol_logging_level", &wire.protocol_logging_level)?,
        source_edges: parse_set("source_edges", &wire.source_edges, true, ObjectName::parse)?,
        max_message_size: size(wire.max_message_size)?,
    };
    connector.check()?;
    Ok(connector)
}

fn receive_connector(wire: ReceiveConnectorEntry) -> Result<ReceiveConnector, InvalidField> {
    let connector = ReceiveConnector {
        edge: name("edge", &wire.edge)?,
        name: name("name", &wire.name)?,
        bindings: parse_set("bindings", &wire.bindings, true, Binding::parse)?,
        remote_ip_ranges: parse_set("remote_ip_ranges", &wire.remote_ip_ranges, false, IpRange::parse)?,
        fqdn: wire.fqdn.as_deref().map(|fqdn| domain("fqdn", fqdn)).transpose()?,
        auth_mechanisms: parse_set("auth_mechanisms", &wire.auth_mechanisms, true, str::parse::<AuthMechanism>)?,
        domain_secure_enabled: wire.domain_secure_enabled,
        permission_groups: parse_set(
            "permission_groups",
            &wire.permission_groups,
            true,
            str::parse::<PermissionGroup>,
        )?,
        protocol_logging_level: word("protocol_logging_level", &wire.protocol_logging_level)?,
        max_message_size: size(wire.max_message_size)?,
    };
    connector.check()?;
    Ok(connector)
}

fn trusted_root(wire: TrustedRoot) -> Result<TrustedRootEntry, InvalidField> {
    let certificate = CaCertificate::parse("certificate_pem", wire.certificate_pem.as_bytes())?;
    if let Some(sha256) = wire.sha256.filter(|given| !given.eq_ignore_ascii_case(&certificate.sha256)) {
        return Err(InvalidField::new(
            "sha256",
            sha256,
            format!("is not the certificate's ({}); fix it or leave it out", certificate.sha256),
        ));
    }
    if let Some(subject) = wire.subject.filter(|given| given != &certificate.subject) {
        return Err(InvalidField::new(
            "subject",
            subject,
            format!("is not the certificate's ({}); fix it or leave it out", certificate.subject),
        ));
    }
    let edges = wire.edges.map(|edges| parse_set("edges", &edges, false, ObjectName::parse)).transpose()?;
    Ok(TrustedRootEntry { certificate, edges })
}

fn on() -> bool {
    true
}

#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if passes a reference")]
fn is_on(value: &bool) -> bool {
    *value
}

fn send_connector_entry(connector: &SendConnector) -> SendConnectorEntry {
    SendConnectorEntry {
        name: connector.name.to_string(),
        address_spaces: strings(&connector.address_spaces),
        smart_hosts: match &connector.routing {
            Routing::Dns => Vec::new(),
            Routing::SmartHosts(hosts) => strings(hosts),
        },
        fqdn: connector.fqdn.as_ref().map(ToString::to_string),
        domain_secure_enabled: connector.domain_secure_enabled,
        dane_enabled: connector.dane_enabled,
        mta_sts_enabled: connector.mta_sts_enabled,
        protocol_logging_level: connector.protocol_logging_level.to_string(),
        source_edges: strings(&connector.source_edges),
        max_message_size: connector.max_message_size.bytes(),
    }
}

fn receive_connector_entry(connector: &ReceiveConnector) -> ReceiveConnectorEntry {
    ReceiveConnectorEntry {
        edge: connector.edge.to_string(),
        name: connector.name.to_string(),
        bindings: strings(&connector.bindings),
        remote_ip_ranges: strings(&connector.remote_ip_ranges),
        fqdn: connector.fqdn.as_ref().map(ToString::to_string),
        auth_mechanisms: strings(&connector.auth_mechanisms),
        domain_secure_enabled: connector.domain_secure_enabled,
        permission_groups: strings(&connector.permission_groups),
        protocol_logging_level: connector.protocol_logging_level.to_string(),
        max_message_size: connector.max_message_size.bytes(),
    }
}

fn name(field: &str, value: &str) -> Result<ObjectName, InvalidField> {
    ObjectName::parse(value).map_err(|e| InvalidField::new(field, value, e))
}

fn domain(field: &str, value: &str) -> Result<Domain, InvalidField> {
    Domain::parse(value).map_err(|e| InvalidField::new(field, value, e))
}

fn word(field: &str, value: &str) -> Result<ProtocolLoggingLevel, InvalidField> {
    value.parse().map_err(|e| InvalidField::new(field, value, e))
}

fn size(bytes: u64) -> Result<MessageSize, InvalidField> {
    MessageSize::new(bytes).map_err(|e| InvalidField::new("max_message_size", bytes.to_string(), e))
}

fn strings<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

fn no_logging() -> String {
    ProtocolLoggingLevel::None.to_string()
}

fn default_size() -> u64 {
    MessageSize::DEFAULT.bytes()
}
