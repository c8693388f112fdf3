//! Protobuf ↔ model conversion for the admin API. Every request field is parsed
//! here, once, with errors that name the field.

use domainsec_model::{
    AddressSpace, AuthMechanism, Binding, CrlProxy, Domain, DomainPattern, InvalidField, IpRange, MessageSize,
    ObjectName, PermissionGroup, ProtocolLoggingLevel, ProxyBypass, ReceiveConnector, Role, Routing, SendConnector,
    SmartHost, TransportConfig, parse_set,
};
use proto::admin as pb;

use crate::{
    db::{
        accepted_domains::AcceptedDomain, audit::AuditEntry, edges::Edge, receive_connectors::StoredReceiveConnector,
        send_connectors::StoredSendConnector,
    },
    directory::{ListEdit, ReceiveConnectorChange, SendConnectorChange, TransportConfigChange},
};

/// Parses a Set-TransportConfig request.
pub fn transport_change(request: pb::SetTransportConfigRequest) -> Result<TransportConfigChange, InvalidField> {
    Ok(TransportConfigChange {
        send: list_edit(
            "tls_send_domain_secure_list",
            request.tls_send_domain_secure_list,
            &request.add_tls_send_domain_secure,
            &request.remove_tls_send_domain_secure,
        )?,
        receive: list_edit(
            "tls_receive_domain_secure_list",
            request.tls_receive_domain_secure_list,
            &request.add_tls_receive_domain_secure,
            &request.remove_tls_receive_domain_secure,
        )?,
        crl_proxy: match request.crl_proxy.as_deref() {
            None => None,
            Some("" | "none") => Some(None),
            Some(value) => Some(Some(CrlProxy::parse(value).map_err(|e| InvalidField::new("crl_proxy", value, e))?)),
        },
        crl_proxy_bypass: request
            .crl_proxy_bypass
            .map(|list| {
                list.values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        ProxyBypass::parse(v).map_err(|e| InvalidField::new(format!("crl_proxy_bypass[{i}]"), v, e))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?,
    })
}

fn list_edit(
    field: &str,
    replace: Option<pb::StringList>,
    add: &[String],
    remove: &[String],
) -> Result<ListEdit, InvalidField> {
    let singular = field.strip_suffix("_list").unwrap_or(field);
    match replace {
        Some(_) if !add.is_empty() || !remove.is_empty() => Err(InvalidField::new(
            field,
            "",
            format!("give either the whole list or add_{singular}/remove_{singular}, not both"),
        )),
        Some(list) => Ok(ListEdit::Replace(parse_set(field, &list.values, false, DomainPattern::parse)?)),
        None if add.is_empty() && remove.is_empty() => Ok(ListEdit::Keep),
        None => Ok(ListEdit::Edit {
            add: parse_set(&format!("add_{singular}"), add, false, DomainPattern::parse)?,
            remove: parse_set(&format!("remove_{singular}"), remove, false, DomainPattern::parse)?,
        }),
    }
}

/// Encodes the transport config.
pub fn transport_config(config: &TransportConfig, version: u64) -> pb::TransportConfig {
    pb::TransportConfig {
        tls_send_domain_secure_list: strings(&config.tls_send_domain_secure_list),
        tls_receive_domain_secure_list: strings(&config.tls_receive_domain_secure_list),
        config_version: version,
        crl_proxy: config.crl_proxy.as_ref().map(ToString::to_string).unwrap_or_default(),
        crl_proxy_bypass: strings(&config.crl_proxy_bypass),
    }
}

/// Parses a domain pattern field (`contoso.com` or `*.contoso.com`).
pub fn domain_pattern(field: &str, value: &str) -> Result<DomainPattern, InvalidField> {
    DomainPattern::parse(value).map_err(|e| InvalidField::new(field, value, e))
}

/// Parses an object name field.
pub fn object_name(field: &str, value: &str) -> Result<ObjectName, InvalidField> {
    ObjectName::parse(value).map_err(|e| InvalidField::new(field, value, e))
}

/// A `policy explain` question, checked for shape here so a bad one is
/// `INVALID_ARGUMENT` naming the field (the edge parses it again as the relay would).
pub fn policy_question(
    from: String,
    to: String,
    client_ip: String,
    binding: String,
) -> Result<proto::edge::PolicyQuestion, InvalidField> {
    let address = |field: &str, value: &str| -> Result<(), InvalidField> {
        if value.len() > MAX_ADDRESS {
            return Err(InvalidField::new(field, "", format!("longer than {MAX_ADDRESS} characters")));
        }
        match value.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
            _ => Err(InvalidField::new(field, value, "not an address (local@domain)")),
        }
    };
    if !matches!(from.as_str(), "" | "<>") {
        address("from", &from)?;
    }
    address("to", &to)?;
    if !client_ip.is_empty() && client_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(InvalidField::new("client_ip", &client_ip, "not an IP address"));
    }
    if !binding.is_empty() && binding.parse::<std::net::SocketAddr>().is_err() {
        return Err(InvalidField::new("binding", &binding, "not ip:port"));
    }
    Ok(proto::edge::PolicyQuestion { from, to, client_ip, binding, snapshot: None })
}

/// A certificate file (PEM blocks, leaf first, or one DER certificate) as DER
/// certificates, each parsed once so a file that is not one is refused here.
pub fn certificate_chain(field: &str, file: &[u8]) -> Result<Vec<Vec<u8>>, InvalidField> {
    if file.len() > MAX_CERTIFICATE_FILE {
        return Err(InvalidField::new(field, "", format!("larger than {MAX_CERTIFICATE_FILE} bytes")));
    }
    let chain: Vec<Vec<u8>> = match pem::parse_many(file) {
        Ok(blocks) if !blocks.is_empty() => {
            blocks.into_iter().filter(|block| block.tag() == "CERTIFICATE").map(pem::Pem::into_contents).collect()
        }
        _ => vec![file.to_vec()],
    };
    if chain.is_empty() {
        return Err(InvalidField::new(field, "", "no CERTIFICATE block in the PEM file"));
    }
    for (index, der) in chain.iter().enumerate() {
        if x509_parser::parse_x509_certificate(der).is_err() {
            return Err(InvalidField::new(format!("{field}[{index}]"), "", "not an X.509 certificate (PEM or DER)"));
        }
    }
    Ok(chain)
}

/// The largest certificate file `partner test --inbound` takes.
const MAX_CERTIFICATE_FILE: usize = 1024 * 1024;

/// RFC 5321's limit on a path, in octets.
const MAX_ADDRESS: usize = 256;

/// Parses a domain field (no wildcard).
pub fn domain(field: &str, value: &str) -> Result<Domain, InvalidField> {
    Domain::parse(value).map_err(|e| InvalidField::new(field, value, e))
}

/// Encodes an accepted domain.
pub fn accepted_domain(domain: &AcceptedDomain) -> pb::AcceptedDomain {
    pb::AcceptedDomain { domain: domain.domain.to_string(), created_at: domain.created_at.to_rfc3339() }
}

/// Encodes an edge.
pub fn edge(edge: &Edge) -> pb::Edge {
    pb::Edge {
        name: edge.name.to_string(),
        fqdn: edge.fqdn.to_string(),
        created_at: edge.created_at.to_rfc3339(),
        state: if edge.certificate_sha256.is_some() { "subscribed" } else { "pending" }.to_owned(),
        certificate_sha256: edge.certificate_sha256.clone().unwrap_or_default(),
    }
}

// --- send connectors ---

/// Parses a New-SendConnector request.
pub fn send_connector(spec: pb::SendConnectorSpec) -> Result<SendConnector, InvalidField> {
    Ok(SendConnector {
        name: object_name("name", &spec.name)?,
        address_spaces: parse_set("address_spaces", &spec.address_spaces, true, AddressSpace::parse)?,
        routing: routing(&spec.smart_hosts)?,
        fqdn: optional_domain("fqdn", &spec.fqdn)?,
        domain_secure_enabled: spec.domain_secure_enabled,
        dane_enabled: !spec.dane_disabled,
        mta_sts_enabled: !spec.mta_sts_disabled,
        protocol_logging_level: logging_level(spec.protocol_logging_level)?,
        source_edges: parse_set("source_edges", &spec.source_edges, true, ObjectName::parse)?,
        max_message_size: message_size(spec.max_message_size)?,
    })
}

/// Parses a Set-SendConnector request.
pub fn send_connector_change(
    request: pb::UpdateSendConnectorRequest,
) -> Result<(ObjectName, SendConnectorChange), InvalidField> {
    let name = object_name("name", &request.name)?;
    let routing = match (request.dns_routing, request.smart_hosts) {
        (true, Some(_)) => {
            return Err(InvalidField::new("dns_routing", "true", "give either DNS routing or smart hosts, not both"));
        }
        (true, None) => Some(Routing::Dns),
        (false, Some(hosts)) if hosts.values.is_empty() => {
            return Err(InvalidField::new(
                "smart_hosts",
                "",
                "must have at least one entry; to route by DNS set dns_routing",
            ));
        }
        (false, Some(hosts)) => Some(routing(&hosts.values)?),
        (false, None) => None,
    };
    let change = SendConnectorChange {
        address_spaces: request
            .address_spaces
            .map(|l| parse_set("address_spaces", &l.values, true, AddressSpace::parse))
            .transpose()?,
        routing,
        fqdn: request.fqdn.map(|f| optional_domain("fqdn", &f)).transpose()?,
        domain_secure_enabled: request.domain_secure_enabled,
        dane_enabled: request.dane_enabled,
        mta_sts_enabled: request.mta_sts_enabled,
        protocol_logging_level: request.protocol_logging_level.map(logging_level).transpose()?,
        source_edges: request
            .source_edges
            .map(|l| parse_set("source_edges", &l.values, true, ObjectName::parse))
            .transpose()?,
        max_message_size: request.max_message_size.map(message_size).transpose()?,
    };
    Ok((name, change))
}

/// Encodes a send connector.
pub fn send_connector_reply(stored: &StoredSendConnector, version: u64) -> pb::SendConnector {
    let connector = &stored.connector;
    pb::SendConnector {
        spec: Some(pb::SendConnectorSpec {
            name: connector.name.to_string(),
            address_spaces: strings(&connector.address_spaces),
            smart_hosts: match &connector.routing {
                Routing::Dns => Vec::new(),
                Routing::SmartHosts(hosts) => strings(hosts),
            },
            fqdn: connector.fqdn.as_ref().map(ToString::to_string).unwrap_or_default(),
            domain_secure_enabled: connector.domain_secure_enabled,
            protocol_logging_level: logging_level_reply(connector.protocol_logging_level) as i32,
            source_edges: strings(&connector.source_edges),
            max_message_size: connector.max_message_size.bytes(),
            dane_disabled: !connector.dane_enabled,
            mta_sts_disabled: !connector.mta_sts_enabled,
        }),
        updated_at: stored.updated_at.to_rfc3339(),
        config_version: version,
    }
}

// --- receive connectors ---

/// Parses a New-ReceiveConnector request. Unset auth mechanisms default to `tls`,
/// unset permission groups to `anonymous-users,partners` (an internet connector).
pub fn receive_connector(spec: pb::ReceiveConnectorSpec) -> Result<ReceiveConnector, InvalidField> {
    let auth_mechanisms = if spec.auth_mechanisms.is_empty() {
        vec![AuthMechanism::Tls]
    } else {
        auth_mechanisms(&spec.auth_mechanisms)?
    };
    let permission_groups = if spec.permission_groups.is_empty() {
        vec![PermissionGroup::AnonymousUsers, PermissionGroup::Partners]
    } else {
        permission_groups(&spec.permission_groups)?
    };
    Ok(ReceiveConnector {
        edge: object_name("edge", &spec.edge)?,
        name: object_name("name", &spec.name)?,
        bindings: parse_set("bindings", &spec.bindings, true, Binding::parse)?,
        remote_ip_ranges: parse_set("remote_ip_ranges", &spec.remote_ip_ranges, false, IpRange::parse)?,
        fqdn: optional_domain("fqdn", &spec.fqdn)?,
        auth_mechanisms,
        domain_secure_enabled: spec.domain_secure_enabled,
        permission_groups,
        protocol_logging_level: logging_level(spec.protocol_logging_level)?,
        max_message_size: message_size(spec.max_message_size)?,
    })
}

/// Parses a Set-ReceiveConnector request.
pub fn receive_connector_change(
    request: pb::UpdateReceiveConnectorRequest,
) -> Result<(ObjectName, ObjectName, ReceiveConnectorChange), InvalidField> {
    let edge = object_name("edge", &request.edge)?;
    let name = object_name("name", &request.name)?;
    let change = ReceiveConnectorChange {
        bindings: request.bindings.map(|l| parse_set("bindings", &l.values, true, Binding::parse)).transpose()?,
        remote_ip_ranges: request
            .remote_ip_ranges
            .map(|l| parse_set("remote_ip_ranges", &l.values, false, IpRange::parse))
            .transpose()?,
        fqdn: request.fqdn.map(|f| optional_domain("fqdn", &f)).transpose()?,
        auth_mechanisms: non_empty(&request.auth_mechanisms).map(auth_mechanisms).transpose()?,
        domain_secure_enabled: request.domain_secure_enabled,
        permission_groups: non_empty(&request.permission_groups).map(permission_groups).transpose()?,
        protocol_logging_level: request.protocol_logging_level.map(logging_level).transpose()?,
        max_message_size: request.max_message_size.map(message_size).transpose()?,
    };
    Ok((edge, name, change))
}

/// Encodes a receive connector.
pub fn receive_connector_reply(stored: &StoredReceiveConnector, version: u64) -> pb::ReceiveConnector {
    let connector = &stored.connector;
    pb::ReceiveConnector {
        spec: Some(pb::ReceiveConnectorSpec {
            edge: connector.edge.to_string(),
            name: connector.name.to_string(),
            bindings: strings(&connector.bindings),
            remote_ip_ranges: strings(&connector.remote_ip_ranges),
            fqdn: connector.fqdn.as_ref().map(ToString::to_string).unwrap_or_default(),
            auth_mechanisms: connector.auth_mechanisms.iter().map(|m| auth_mechanism_reply(*m) as i32).collect(),
            domain_secure_enabled: connector.domain_secure_enabled,
            permission_groups: connector.permission_groups.iter().map(|g| permission_group_reply(*g) as i32).collect(),
            protocol_logging_level: logging_level_reply(connector.protocol_logging_level) as i32,
            max_message_size: connector.max_message_size.bytes(),
        }),
        updated_at: stored.updated_at.to_rfc3339(),
        config_version: version,
    }
}

// --- audit and identity ---

/// Encodes an audit entry.
pub fn audit_entry(entry: &AuditEntry) -> pb::AuditEntry {
    let json =
        |value: &Option<serde_json::Value>| value.as_ref().map_or_else(|| "null".to_owned(), ToString::to_string);
    pb::AuditEntry {
        id: entry.id,
        at: entry.at.to_rfc3339(),
        actor: entry.actor.clone(),
        actor_role: entry.actor_role.clone(),
        action: entry.action.clone(),
        target: entry.target.clone(),
        config_version: u64::try_from(entry.config_version).unwrap_or_default(),
        before_json: json(&entry.before),
        after_json: json(&entry.after),
    }
}

/// Encodes a role.
pub fn role_reply(role: Role) -> pb::Role {
    match role {
        Role::OrgAdmin => pb::Role::OrgAdmin,
        Role::ServerAdmin => pb::Role::ServerAdmin,
        Role::ViewOnly => pb::Role::ViewOnly,
    }
}

// --- field helpers ---

fn routing(smart_hosts: &[String]) -> Result<Routing, InvalidField> {
    if smart_hosts.is_empty() {
        return Ok(Routing::Dns);
    }
    Ok(Routing::SmartHosts(parse_set("smart_hosts", smart_hosts, true, SmartHost::parse)?))
}

fn optional_domain(field: &str, value: &str) -> Result<Option<Domain>, InvalidField> {
    if value.is_empty() {
        return Ok(None);
    }
    domain(field, value).map(Some)
}

fn message_size(bytes: u64) -> Result<MessageSize, InvalidField> {
    if bytes == 0 {
        return Ok(MessageSize::DEFAULT);
    }
    MessageSize::new(bytes).map_err(|e| InvalidField::new("max_message_size", bytes.to_string(), e))
}

fn logging_level(value: i32) -> Result<ProtocolLoggingLevel, InvalidField> {
    match pb::ProtocolLoggingLevel::try_from(value) {
        Ok(pb::ProtocolLoggingLevel::Unspecified | pb::ProtocolLoggingLevel::None) => Ok(ProtocolLoggingLevel::None),
        Ok(pb::ProtocolLoggingLevel::Verbose) => Ok(ProtocolLoggingLevel::Verbose),
        Err(_) => Err(unknown_enum("protocol_logging_level", value)),
    }
}

fn logging_level_reply(level: ProtocolLoggingLevel) -> pb::ProtocolLoggingLevel {
    match level {
        ProtocolLoggingLevel::None => pb::ProtocolLoggingLevel::None,
        ProtocolLoggingLevel::Verbose => pb::ProtocolLoggingLevel::Verbose,
    }
}

fn auth_mechanisms(values: &[i32]) -> Result<Vec<AuthMechanism>, InvalidField> {
    let mut parsed = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let field = format!("auth_mechanisms[{index}]");
        let mechanism = match pb::AuthMechanism::try_from(*value) {
            Ok(pb::AuthMechanism::None) => AuthMechanism::None,
            Ok(pb::AuthMechanism::Tls) => AuthMechanism::Tls,
            Ok(pb::AuthMechanism::BasicAuth) => AuthMechanism::BasicAuth,
            Ok(pb::AuthMechanism::BasicAuthRequireTls) => AuthMechanism::BasicAuthRequireTls,
            Ok(pb::AuthMechanism::ExternalAuthoritative) => AuthMechanism::ExternalAuthoritative,
            Ok(pb::AuthMechanism::Unspecified) | Err(_) => return Err(unknown_enum(&field, *value)),
        };
        if parsed.contains(&mechanism) {
            return Err(InvalidField::new(field, mechanism.as_str(), "listed twice"));
        }
        parsed.push(mechanism);
    }
    Ok(parsed)
}

fn auth_mechanism_reply(mechanism: AuthMechanism) -> pb::AuthMechanism {
    match mechanism {
        AuthMechanism::None => pb::AuthMechanism::None,
        AuthMechanism::Tls => pb::AuthMechanism::Tls,
        AuthMechanism::BasicAuth => pb::AuthMechanism::BasicAuth,
        AuthMechanism::BasicAuthRequireTls => pb::AuthMechanism::BasicAuthRequireTls,
        AuthMechanism::ExternalAuthoritative => pb::AuthMechanism::ExternalAuthoritative,
    }
}

fn permission_groups(values: &[i32]) -> Result<Vec<PermissionGroup>, InvalidField> {
    let mut parsed = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let field = format!("permission_groups[{index}]");
        let group = match pb::PermissionGroup::try_from(*value) {
            Ok(pb::PermissionGroup::AnonymousUsers) => PermissionGroup::AnonymousUsers,
            Ok(pb::PermissionGroup::Partners) => PermissionGroup::Partners,
            Ok(pb::PermissionGroup::ExchangeUsers) => PermissionGroup::ExchangeUsers,
            Ok(pb::PermissionGroup::ExchangeServers) => PermissionGroup::ExchangeServers,
            Ok(pb::PermissionGroup::Unspecified) | Err(_) => return Err(unknown_enum(&field, *value)),
        };
        if parsed.contains(&group) {
            return Err(InvalidField::new(field, group.as_str(), "listed twice"));
        }
        parsed.push(group);
    }
    Ok(parsed)
}

fn permission_group_reply(group: PermissionGroup) -> pb::PermissionGroup {
    match group {
        PermissionGroup::AnonymousUsers => pb::PermissionGroup::AnonymousUsers,
        PermissionGroup::Partners => pb::PermissionGroup::Partners,
        PermissionGroup::ExchangeUsers => pb::PermissionGroup::ExchangeUsers,
        PermissionGroup::ExchangeServers => pb::PermissionGroup::ExchangeServers,
    }
}

fn non_empty(values: &[i32]) -> Option<&[i32]> {
    (!values.is_empty()).then_some(values)
}

fn unknown_enum(field: &str, value: i32) -> InvalidField {
    InvalidField::new(field, value.to_string(), "unknown or unspecified enumeration value")
}

fn strings<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

mod edges;
mod history;
pub mod publish;

pub use edges::*;
pub use history::*;
