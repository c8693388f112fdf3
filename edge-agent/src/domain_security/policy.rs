//! Whether Domain Security applies: the paper's two list rules decided once, for
//! the inbound session, the outbound delivery and the counters alike.
//!
//! A sender's or recipient's domain is matched against the secure-domain lists as
//! the peer wrote it: a name that does not parse is judged by its raw labels
//! ([`domainsec_model::DomainPattern::could_cover`]), so a malformed spelling of a
//! listed domain is refused rather than taken for an unlisted one. Counters are
//! kept per list *entry*, never per domain a peer names, so no peer can grow them.

use domainsec_model::{Domain, DomainPattern, PermissionGroup, ReceiveConnector, Routing, SendConnector};

use super::{
    dane::{DaneRequirement, Tlsa},
    mta_sts::{
        StsLookup,
        policy::{Mode, Policy},
    },
};
use crate::{
    apply::EdgeConfig,
    routing::dns::{Security, ValidatedAnswer},
};

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

/// The outbound TLS policy for a recipient domain, strongest source first (the paper's
/// Domain Security, then DANE, then MTA-STS, then opportunistic TLS). DANE is decided per
/// MX host ([`OutboundPolicy::hop`]): a host without DNSSEC-validated TLSA records falls
/// through to MTA-STS or opportunistic TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundPolicy {
    /// Domain Security (the domain is on `TLSSendDomainSecureList`).
    DomainSecurity {
        /// The list entry.
        entry: DomainPattern,
        /// The recipient domain.
        domain: Domain,
    },
    /// DANE, MTA-STS or neither, as the facts say.
    Published {
        /// The recipient domain.
        domain: String,
        /// Whether DANE may apply: the MX RRset validated (or why not).
        dane: DaneStatus,
        /// The MTA-STS policy in force (`enforce` or `testing`), or why none.
        sts: Result<Policy, String>,
    },
}

/// Whether DANE applies to a domain's MX hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaneStatus {
    /// The MX RRset (or the domain's own address, as implicit MX) validated: each MX
    /// host's TLSA records decide. The validated exchanges (lower case, no trailing dot):
    /// a host the routing lookup returned outside this set is never tried, so a forged
    /// routing answer cannot lead around DANE.
    Applies(Vec<String>),
    /// It does not apply; why (connector setting, no trusted resolver, insecure MX).
    NotApplicable(String),
    /// The validated MX lookup failed (bogus, or no answer): nothing is sent (RFC 7672 §2.2.1).
    LookupFailed(String),
}

/// What the facts about a domain are, as looked up for [`outbound_policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainFacts {
    /// The validated MX answer, or why it was not asked.
    pub mx: Result<ValidatedAnswer, String>,
    /// The MTA-STS lookup, or why it was not made.
    pub sts: Result<StsLookup, String>,
}

/// What one MX host demands of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopRequirement {
    /// Domain Security: mutual TLS, the paper's checks.
    DomainSecurity {
        /// The list entry.
        entry: DomainPattern,
        /// The recipient domain.
        domain: Domain,
    },
    /// DANE: STARTTLS, and the TLSA records authenticate the server (or only encrypt).
    Dane(DaneRequirement),
    /// MTA-STS: STARTTLS and a WebPKI certificate for the MX host; `enforce` false is
    /// `testing` (delivered either way, failures reported).
    MtaSts {
        /// Whether failures defer.
        enforce: bool,
        /// Whether the host is listed in the policy (a `testing` policy still delivers).
        listed: bool,
    },
    /// Opportunistic TLS.
    Opportunistic,
    /// Do not connect to this host; why, and the counter reason.
    Skip {
        /// For the queue and logs: "DANE: TLSA lookup failed: …".
        reason: String,
        /// The counter reason (`dane.lookup-failed`, `mta-sts.mx-not-listed`).
        kind: &'static str,
    },
}

/// The strongest source that applies to `domain` on `connector` given `facts`.
pub fn outbound_policy(requirement: OutboundRequirement, domain: &str, facts: DomainFacts) -> OutboundPolicy {
    if let OutboundRequirement::Required { entry, domain } = requirement {
        return OutboundPolicy::DomainSecurity { entry, domain };
    }
    let dane = match facts.mx {
        Err(reason) => DaneStatus::NotApplicable(reason),
        Ok(ValidatedAnswer::Failed(reason)) => DaneStatus::LookupFailed(format!("validated MX lookup: {reason}")),
        Ok(ValidatedAnswer::Found(Security::Secure, records)) => DaneStatus::Applies(mx_exchanges(&records)),
        // No MX, securely: the domain itself is the implicit MX (RFC 7672 §2.2.1).
        Ok(ValidatedAnswer::NoRecords(Security::Secure)) => DaneStatus::Applies(vec![normalize(domain)]),
        Ok(_) => DaneStatus::NotApplicable("the MX records are not DNSSEC-validated".into()),
    };
    let sts = match facts.sts {
        Err(reason) => Err(reason),
        Ok(StsLookup::NoPolicy(reason)) => Err(reason),
        Ok(StsLookup::Policy { cached, .. }) => Ok(cached.policy),
    };
    OutboundPolicy::Published { domain: domain.to_owned(), dane, sts }
}

/// Why DANE and MTA-STS are not asked about for `connector`, if they are not.
pub fn published_sources(connector: &SendConnector) -> (Result<(), String>, Result<(), String>) {
    let smart_hosts = matches!(connector.routing, Routing::SmartHosts(_));
    let source = |enabled: bool, name: &str| match (enabled, smart_hosts) {
        (false, _) => Err(format!("{name} is disabled on send connector {}", connector.name)),
        (true, true) => Err(format!("send connector {} routes to smart hosts, not MX hosts", connector.name)),
        (true, false) => Ok(()),
    };
    (source(connector.dane_enabled, "DANE"), source(connector.mta_sts_enabled, "MTA-STS"))
}

// === impl OutboundPolicy ===

impl OutboundPolicy {
    /// What MX `host` demands, given its TLSA answer (asked only when DANE applies).
    pub fn hop(&self, host: &str, tlsa: Option<&ValidatedAnswer>) -> HopRequirement {
        let (dane, sts) = match self {
            Self::DomainSecurity { entry, domain } => {
                return HopRequirement::DomainSecurity { entry: entry.clone(), domain: domain.clone() };
            }
            Self::Published { dane, sts, .. } => (dane, sts),
        };
        match dane {
            DaneStatus::LookupFailed(reason) => {
                return HopRequirement::Skip { reason: format!("DANE: {reason}"), kind: "dane.lookup-failed" };
            }
            DaneStatus::Applies(validated) if !validated.iter().any(|mx| *mx == normalize(host)) => {
                return HopRequirement::Skip {
                    reason: format!("DANE: MX host {host} is not in the DNSSEC-validated MX records"),
                    kind: "dane.mx-not-validated",
                };
            }
            DaneStatus::Applies(_) => match tlsa {
                Some(ValidatedAnswer::Found(Security::Secure, records)) => {
                    let requirement = DaneRequirement::from_records(tlsa_records(records));
                    // Only unusable records: TLS is mandatory, and an enforced MTA-STS
                    // policy still authenticates the host (it is stronger than no check).
                    let enforced = matches!(sts, Ok(policy) if policy.mode == Mode::Enforce);
                    if requirement != DaneRequirement::EncryptOnly || !enforced {
                        return HopRequirement::Dane(requirement);
                    }
                }
                Some(ValidatedAnswer::Failed(reason)) => {
                    return HopRequirement::Skip {
                        reason: format!("DANE: TLSA lookup for {host} failed: {reason}"),
                        kind: "dane.lookup-failed",
                    };
                }
                // Insecure, or securely absent: this host is not a DANE host.
                _ => {}
            },
            DaneStatus::NotApplicable(_) => {}
        }
        match sts {
            Ok(policy) if policy.mode == Mode::Enforce && !policy.allows_mx(host) => HopRequirement::Skip {
                reason: format!("MTA-STS: MX host {host} not in policy"),
                kind: "mta-sts.mx-not-listed",
            },
            Ok(policy) if policy.mode != Mode::None => {
                HopRequirement::MtaSts { enforce: policy.mode == Mode::Enforce, listed: policy.allows_mx(host) }
            }
            _ => HopRequirement::Opportunistic,
        }
    }

    /// What the source rests on, for `policy explain` and `partner test`.
    pub fn detail(&self) -> String {
        let (dane, sts) = match self {
            Self::DomainSecurity { entry, .. } => {
                return format!("TLSSendDomainSecureList entry {entry}: mutual TLS with the paper's checks");
            }
            Self::Published { dane, sts, .. } => (dane, sts),
        };
        let dane = match dane {
            DaneStatus::Applies(_) => {
                "DANE: the MX records are DNSSEC-validated; each MX host's TLSA records decide".into()
            }
            DaneStatus::NotApplicable(reason) => format!("DANE: not used ({reason})"),
            DaneStatus::LookupFailed(reason) => format!("DANE: {reason}; mail waits"),
        };
        let sts = match sts {
            Ok(policy) => {
                format!("MTA-STS: {} policy, mx {}, max_age {} s", policy.mode, policy.mx.join(" "), policy.max_age)
            }
            Err(reason) => format!("MTA-STS: no policy ({reason})"),
        };
        format!("{dane}; {sts}")
    }

    /// The source's name for logs and `policy explain`: "Domain Security", "DANE",
    /// "MTA-STS (enforce)", "opportunistic TLS".
    pub fn source(&self) -> String {
        match self {
            Self::DomainSecurity { .. } => "Domain Security".into(),
            Self::Published { dane: DaneStatus::Applies(_) | DaneStatus::LookupFailed(_), .. } => "DANE".into(),
            Self::Published { sts: Ok(policy), .. } if policy.mode != Mode::None => {
                format!("MTA-STS ({})", policy.mode)
            }
            Self::Published { .. } => "opportunistic TLS".into(),
        }
    }
}

/// The exchanges of validated MX RDATA, normalized.
fn mx_exchanges(records: &[hickory_resolver::proto::rr::RData]) -> Vec<String> {
    records
        .iter()
        .filter_map(|record| match record {
            hickory_resolver::proto::rr::RData::MX(mx) => Some(normalize(&mx.exchange.to_ascii())),
            _ => None,
        })
        .collect()
}

/// Lower case, no trailing dot: how hosts are compared.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// TLSA RDATA as [`Tlsa`] records (other types dropped).
fn tlsa_records(records: &[hickory_resolver::proto::rr::RData]) -> Vec<Tlsa> {
    records
        .iter()
        .filter_map(|record| match record {
            hickory_resolver::proto::rr::RData::TLSA(tlsa) => Some(Tlsa {
                usage: u8::from(tlsa.cert_usage),
                selector: u8::from(tlsa.selector),
                matching: u8::from(tlsa.matching),
                data: tlsa.cert_data.clone(),
            }),
            _ => None,
        })
        .collect()
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
            dane_enabled: true,
            mta_sts_enabled: true,
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

    mod published {
        use hickory_resolver::proto::rr::{
            RData,
            rdata::{
                TLSA,
                tlsa::{CertUsage, Matching, Selector},
            },
        };

        use super::*;
        use crate::domain_security::mta_sts::{CachedPolicy, policy::Policy};

        fn sts(mode: Mode) -> Result<StsLookup, String> {
            let policy = Policy { mode, mx: vec!["*.example.net".into()], max_age: 86_400 };
            Ok(StsLookup::Policy { cached: CachedPolicy { id: "1".into(), policy, fetched_at: 0 }, how: "test".into() })
        }

        fn mx(security: Security) -> Result<ValidatedAnswer, String> {
            let exchange = hickory_resolver::proto::rr::Name::from_ascii("MX1.example.net.").unwrap();
            let record = RData::MX(hickory_resolver::proto::rr::rdata::MX::new(10, exchange));
            Ok(ValidatedAnswer::Found(security, vec![record]))
        }

        fn tlsa(usage: u8) -> ValidatedAnswer {
            let record = TLSA::new(CertUsage::from(usage), Selector::Spki, Matching::Sha256, vec![7; 32]);
            ValidatedAnswer::Found(Security::Secure, vec![RData::TLSA(record)])
        }

        fn decide(mx: Result<ValidatedAnswer, String>, sts: Result<StsLookup, String>) -> OutboundPolicy {
            outbound_policy(OutboundRequirement::NotRequired, "example.net", DomainFacts { mx, sts })
        }

        #[test]
        fn domain_security_wins_over_everything_published() {
            let requirement = outbound_requirement(&config(), &send_connector(true), "woodgrovebank.com");
            let policy = outbound_policy(
                requirement,
                "woodgrovebank.com",
                DomainFacts { mx: mx(Security::Secure), sts: sts(Mode::Enforce) },
            );
            assert_eq!(policy.source(), "Domain Security");
            assert!(matches!(policy.hop("mx1.example.net", Some(&tlsa(3))), HopRequirement::DomainSecurity { .. }));
        }

        #[test]
        fn dane_applies_per_host_and_falls_through_when_a_host_has_no_secure_tlsa() {
            let policy = decide(mx(Security::Secure), sts(Mode::Enforce));
            assert_eq!(policy.source(), "DANE");
            assert!(matches!(
                policy.hop("mx1.example.net", Some(&tlsa(3))),
                HopRequirement::Dane(DaneRequirement::Authenticate(_))
            ));
            let insecure = ValidatedAnswer::Found(Security::Insecure, vec![]);
            assert_eq!(
                policy.hop("mx1.example.net", Some(&insecure)),
                HopRequirement::MtaSts { enforce: true, listed: true }
            );
            let absent = ValidatedAnswer::NoSuchName(Security::Secure);
            assert_eq!(
                policy.hop("mx1.example.net", Some(&absent)),
                HopRequirement::MtaSts { enforce: true, listed: true }
            );
            let bogus = ValidatedAnswer::Failed("SERVFAIL".into());
            assert!(matches!(
                policy.hop("mx1.example.net", Some(&bogus)),
                HopRequirement::Skip { kind: "dane.lookup-failed", .. }
            ));
            // A host the routing lookup gave that the validated MX records do not list.
            assert!(matches!(
                policy.hop("mx.attacker.test", Some(&tlsa(3))),
                HopRequirement::Skip { kind: "dane.mx-not-validated", .. }
            ));
            // Only unusable records under an enforced MTA-STS policy: the policy's checks apply.
            assert_eq!(
                policy.hop("mx1.example.net", Some(&tlsa(1))),
                HopRequirement::MtaSts { enforce: true, listed: true }
            );
            let testing = decide(mx(Security::Secure), sts(Mode::Testing));
            assert_eq!(
                testing.hop("mx1.example.net", Some(&tlsa(1))),
                HopRequirement::Dane(DaneRequirement::EncryptOnly)
            );
        }

        #[test]
        fn an_insecure_mx_never_uses_dane_and_a_failed_one_sends_nothing() {
            let insecure = decide(mx(Security::Insecure), Err("no TXT".into()));
            assert_eq!(insecure.source(), "opportunistic TLS");
            assert_eq!(insecure.hop("mx1.example.net", Some(&tlsa(3))), HopRequirement::Opportunistic);
            let failed = decide(Ok(ValidatedAnswer::Failed("SERVFAIL".into())), sts(Mode::Testing));
            assert!(matches!(
                failed.hop("mx1.example.net", None),
                HopRequirement::Skip { kind: "dane.lookup-failed", .. }
            ));
        }

        #[test]
        fn mta_sts_enforce_skips_unlisted_hosts_and_testing_only_reports_them() {
            let enforce = decide(Err("DANE disabled".into()), sts(Mode::Enforce));
            assert_eq!(enforce.source(), "MTA-STS (enforce)");
            assert!(matches!(
                enforce.hop("mx.evil.test", None),
                HopRequirement::Skip { kind: "mta-sts.mx-not-listed", .. }
            ));
            let testing = decide(Err("DANE disabled".into()), sts(Mode::Testing));
            assert_eq!(testing.hop("mx.evil.test", None), HopRequirement::MtaSts { enforce: false, listed: false });
            let none = decide(Err("DANE disabled".into()), sts(Mode::None));
            assert_eq!(none.hop("mx.evil.test", None), HopRequirement::Opportunistic);
        }

        #[test]
        fn a_connector_can_turn_each_source_off_and_smart_hosts_never_use_them() {
            let mut connector = send_connector(false);
            connector.dane_enabled = false;
            let (dane, sts) = published_sources(&connector);
            assert!(dane.unwrap_err().contains("DANE is disabled on send connector Internet"));
            assert!(sts.is_ok());
            connector.routing =
                Routing::SmartHosts(vec![domainsec_model::SmartHost::parse("relay.example:25").unwrap()]);
            assert!(published_sources(&connector).1.unwrap_err().contains("smart hosts"));
        }
    }
}
