//! Whether Domain Security applies: the paper's two list rules decided once, for
//! the inbound session, the outbound delivery and the counters alike.
//!
//! A sender's or recipient's domain is matched against the secure-domain lists as
//! the peer wrote it: a name that does not parse is judged by its raw labels
//! ([`domainsec_model::DomainPattern::could_cover`]), so a malformed spelling of a
//! listed domain is refused rather than taken for an unlisted one. Counters are
//! kept per list *entry*, never per domain a peer names, so no peer can grow them.

use domainsec_model::{Domain, DomainPattern, PermissionGroup, ReceiveConnector, SendConnector};

use crate::apply::EdgeConfig;

/// What inbound Domain Security asks of a transaction, decided at `MAIL FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundRequirement {
    /// Not required: the connector does not enforce Domain Security, the sender is
    /// `<>`, or no entry of `TLSReceiveDomainSecureList` covers its domain.
    NotRequired,
    /// `entry` covers `domain`: mutual TLS with a certificate for `domain` is required.
    Required {
        /// The list entry, the key the counters use.
        entry: DomainPattern,
        /// The sender's domain.
        domain: Domain,
    },
    /// `entry` could cover the sender's domain, which is not a valid domain name:
    /// no certificate can be checked against it, so it is refused.
    Malformed {
        /// The list entry, the key the counters use.
        entry: DomainPattern,
    },
}

/// What outbound Domain Security asks of a delivery to one recipient domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundRequirement {
    /// Opportunistic TLS: the connector has Domain Security off, or the domain is not listed.
    NotRequired,
    /// Mutual TLS with the paper's checks against `domain`.
    Required {
        /// The `TLSSendDomainSecureList` entry, the key the counters use.
        entry: DomainPattern,
        /// The recipient domain the partner's certificate must match.
        domain: Domain,
    },
}

/// The inbound rule: for mail from `sender_domain` (`None` for `<>`) on `connector`.
pub fn inbound_requirement(
    config: &EdgeConfig,
    connector: &ReceiveConnector,
    sender_domain: Option<&str>,
) -> InboundRequirement {
    let Some(raw) = sender_domain.filter(|_| connector.domain_secure_enabled) else {
        return InboundRequirement::NotRequired;
    };
    let Some(entry) = config.transport.secure_receive_entry(raw) else {
        return InboundRequirement::NotRequired;
    };
    match Domain::parse(raw) {
        Ok(domain) => InboundRequirement::Required { entry: entry.clone(), domain },
        Err(_) => InboundRequirement::Malformed { entry: entry.clone() },
    }
}

/// The outbound rule: for a delivery to `recipient_domain` through `connector`.
/// A recipient domain that does not parse never reaches a send connector's DNS
/// routing, so only valid names can require Domain Security here.
pub fn outbound_requirement(
    config: &EdgeConfig,
    connector: &SendConnector,
    recipient_domain: &str,
) -> OutboundRequirement {
    if !connector.domain_secure_enabled {
        return OutboundRequirement::NotRequired;
    }
    let (Some(entry), Ok(domain)) =
        (config.transport.secure_send_entry(recipient_domain), Domain::parse(recipient_domain))
    else {
        return OutboundRequirement::NotRequired;
    };
    OutboundRequirement::Required { entry: entry.clone(), domain }
}

/// Who may submit on `connector`: anonymous senders where `anonymous-users` or
/// `exchange-servers` is granted; a verified partner (Domain Secured) also where
/// only `partners` is (the paper's Appendix 2). `exchange-users` alone needs AUTH.
/// The group that grants it, or `None`.
pub fn submit_permission(connector: &ReceiveConnector, domain_secured: bool) -> Option<PermissionGroup> {
    connector.permission_groups.iter().copied().find(|group| match group {
        PermissionGroup::AnonymousUsers | PermissionGroup::ExchangeServers => true,
        PermissionGroup::Partners => domain_secured,
        PermissionGroup::ExchangeUsers => false,
    })
}

/// Why mail for a recipient may be taken on `connector` (never an open relay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayPermission {
    /// The organization's own servers (`exchange-servers`, which the directory
    /// limits to narrow remote IP ranges) may send to any domain.
    OrganizationServers,
    /// The recipient's domain is covered by this accepted domain.
    AcceptedDomain(DomainPattern),
    /// Neither: `550 5.7.1 Unable to relay`.
    Refused,
}

/// Whether mail for `recipient_domain` may be taken on `connector`.
pub fn relay_permission(config: &EdgeConfig, connector: &ReceiveConnector, recipient_domain: &str) -> RelayPermission {
    if connector.permission_groups.contains(&PermissionGroup::ExchangeServers) {
        return RelayPermission::OrganizationServers;
    }
    let Ok(domain) = Domain::parse(recipient_domain) else { return RelayPermission::Refused };
    match config.accepted_domains.iter().find(|accepted| accepted.covers(&domain)) {
        Some(accepted) => RelayPermission::AcceptedDomain(accepted.clone()),
        None => RelayPermission::Refused,
    }
}

#[cfg(test)]
mod tests {
    use domainsec_model::{
        AddressSpace, AuthMechanism, Binding, MessageSize, ObjectName, PermissionGroup, ProtocolLoggingLevel, Routing,
        TransportConfig,
    };

    use super::*;

    fn config() -> EdgeConfig {
        EdgeConfig {
            version: 1,
            fqdn: Domain::parse("mail1.contoso.com").unwrap(),
            transport: TransportConfig {
                tls_send_domain_secure_list: vec![DomainPattern::parse("woodgrovebank.com").unwrap()],
                tls_receive_domain_secure_list: vec![
                    DomainPattern::parse("woodgrovebank.com").unwrap(),
                    DomainPattern::parse("*.fabrikam.com").unwrap(),
                ],
                ..TransportConfig::default()
            },
            accepted_domains: vec![],
            send_connectors: vec![],
            receive_connectors: vec![],
            trusted_roots: vec![],
            organization_domains: vec![],
        }
    }

    fn connector(domain_secure_enabled: bool) -> ReceiveConnector {
        ReceiveConnector {
            edge: ObjectName::parse("mail1").unwrap(),
            name: ObjectName::parse("Inet").unwrap(),
            bindings: vec![Binding::parse("127.0.0.1:25").unwrap()],
            remote_ip_ranges: vec![],
            fqdn: None,
            auth_mechanisms: vec![AuthMechanism::Tls],
            domain_secure_enabled,
            permission_groups: vec![PermissionGroup::Partners],
            protocol_logging_level: ProtocolLoggingLevel::None,
            max_message_size: MessageSize::DEFAULT,
        }
    }

    fn send_connector(domain_secure_enabled: bool) -> SendConnector {
        SendConnector {
            name: ObjectName::parse("Internet").unwrap(),
            address_spaces: vec![AddressSpace::Any],
            routing: Routing::Dns,
            fqdn: None,
            domain_secure_enabled,
            protocol_logging_level: ProtocolLoggingLevel::None,
            source_edges: vec![ObjectName::parse("mail1").unwrap()],
            max_message_size: MessageSize::DEFAULT,
        }
    }

    fn inbound(sender: Option<&str>) -> InboundRequirement {
        inbound_requirement(&config(), &connector(true), sender)
    }

    fn required(entry: &str, domain: &str) -> InboundRequirement {
        InboundRequirement::Required {
            entry: DomainPattern::parse(entry).unwrap(),
            domain: Domain::parse(domain).unwrap(),
        }
    }

    #[test]
    fn the_receive_list_decides_for_every_spelling_of_a_listed_sender() {
        assert_eq!(inbound(Some("woodgrovebank.com")), required("woodgrovebank.com", "woodgrovebank.com"));
        assert_eq!(inbound(Some("WoodGroveBank.COM.")), required("woodgrovebank.com", "woodgrovebank.com"));
        assert_eq!(inbound(Some("r7.fabrikam.com")), required("*.fabrikam.com", "r7.fabrikam.com"));
        assert_eq!(inbound(Some("fabrikam.com")), required("*.fabrikam.com", "fabrikam.com"));
        let malformed = InboundRequirement::Malformed { entry: DomainPattern::parse("*.fabrikam.com").unwrap() };
        assert_eq!(inbound(Some("xn--55555555.fabrikam.com")), malformed);
        assert_eq!(inbound(Some("a..fabrikam.com")), malformed);
    }

    #[test]
    fn unlisted_senders_null_senders_and_plain_connectors_need_nothing() {
        assert_eq!(inbound(Some("mail.woodgrovebank.com")), InboundRequirement::NotRequired);
        assert_eq!(inbound(Some("attacker.example")), InboundRequirement::NotRequired);
        assert_eq!(inbound(None), InboundRequirement::NotRequired);
        let off = inbound_requirement(&config(), &connector(false), Some("woodgrovebank.com"));
        assert_eq!(off, InboundRequirement::NotRequired);
    }

    #[test]
    fn the_send_list_and_the_connector_setting_decide_outbound() {
        let connector = send_connector(true);
        let expected = OutboundRequirement::Required {
            entry: DomainPattern::parse("woodgrovebank.com").unwrap(),
            domain: Domain::parse("woodgrovebank.com").unwrap(),
        };
        assert_eq!(outbound_requirement(&config(), &connector, "woodgrovebank.com"), expected);
        assert_eq!(outbound_requirement(&config(), &connector, "fabrikam.com"), OutboundRequirement::NotRequired);
        let off = outbound_requirement(&config(), &send_connector(false), "woodgrovebank.com");
        assert_eq!(off, OutboundRequirement::NotRequired);
    }
}
