//! Send and receive connectors, with the cross-field rules the paper sets.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{
    InvalidField,
    domain::{AddressSpace, Domain},
    net::{Binding, IpRange, SmartHost},
};

/// A send connector: which domains it carries mail for, and how it routes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendConnector {
    /// Unique name, e.g. `Internet`.
    pub name: ObjectName,
    /// Recipient domains this connector serves; the most specific match wins.
    pub address_spaces: Vec<AddressSpace>,
    /// DNS (MX) routing or smart hosts.
    pub routing: Routing,
    /// Name used in EHLO; `None` means the edge's own FQDN.
    pub fqdn: Option<Domain>,
    /// Outbound Domain Security for domains on the send secure list.
    pub domain_secure_enabled: bool,
    /// DANE (RFC 7672) for domains whose MX and TLSA records are DNSSEC-signed
    /// (DNS routing only; below Domain Security).
    #[serde(default = "enabled")]
    pub dane_enabled: bool,
    /// MTA-STS (RFC 8461) for domains that publish a policy (DNS routing only; below DANE).
    #[serde(default = "enabled")]
    pub mta_sts_enabled: bool,
    /// Whether the send protocol log is written.
    pub protocol_logging_level: ProtocolLoggingLevel,
    /// Edges that send through this connector.
    pub source_edges: Vec<ObjectName>,
    /// Largest message this connector sends.
    pub max_message_size: MessageSize,
}

fn enabled() -> bool {
    true
}

/// How a send connector finds the next hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// MX records of the recipient domain.
    Dns,
    /// These hosts, in order.
    SmartHosts(Vec<SmartHost>),
}

/// For people: `DNS MX lookup`, or `smart hosts: a, b:2525`.
impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns => f.write_str("DNS MX lookup"),
            Self::SmartHosts(hosts) => {
                f.write_str("smart hosts: ")?;
                for (index, host) in hosts.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{host}")?;
                }
                Ok(())
            }
        }
    }
}

/// A receive connector of one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveConnector {
    /// The edge it belongs to.
    pub edge: ObjectName,
    /// Name, unique per edge, e.g. `Inet`.
    pub name: ObjectName,
    /// Addresses to listen on.
    pub bindings: Vec<Binding>,
    /// Remote addresses served; empty means every address.
    pub remote_ip_ranges: Vec<IpRange>,
    /// Name in the banner and EHLO reply; `None` means the edge's FQDN.
    pub fqdn: Option<Domain>,
    /// How senders may authenticate (`Tls` offers STARTTLS).
    pub auth_mechanisms: Vec<AuthMechanism>,
    /// Inbound Domain Security for domains on the receive secure list.
    pub domain_secure_enabled: bool,
    /// Who may submit mail through this connector.
    pub permission_groups: Vec<PermissionGroup>,
    /// Whether the receive protocol log is written.
    pub protocol_logging_level: ProtocolLoggingLevel,
    /// Largest message accepted.
    pub max_message_size: MessageSize,
}

/// A name for a directory object (connector or edge): 1–64 characters, letters,
/// digits, `.`, `_` and `-`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectName(String);

/// A message size limit in bytes, from 1 KiB to 2 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct MessageSize(u64);

/// Protocol logging of a connector, as in Exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolLoggingLevel {
    /// No protocol log.
    #[default]
    None,
    /// Every SMTP line and TLS detail.
    Verbose,
}

/// How a sender may authenticate to a receive connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMechanism {
    /// No authentication and no STARTTLS.
    None,
    /// STARTTLS, with client certificates for Domain Security.
    Tls,
    /// SMTP AUTH with a password.
    BasicAuth,
    /// SMTP AUTH with a password, only after STARTTLS.
    BasicAuthRequireTls,
    /// The connection is trusted because of an external control (e.g. IPsec).
    ExternalAuthoritative,
}

/// Who may submit mail through a receive connector (Exchange's permission groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PermissionGroup {
    /// Any sender, for the organization's accepted domains only.
    AnonymousUsers,
    /// Domain-secured partners (the paper's Appendix 2).
    Partners,
    /// Authenticated users of the organization.
    ExchangeUsers,
    /// The organization's own servers, which may relay to any domain.
    ExchangeServers,
}

/// Why an object name, size or enumeration value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Name breaks the [`ObjectName`] rules.
    #[error("names are 1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit")]
    BadName,
    /// Size outside the allowed range.
    #[error("must be from {min} to {max} bytes", min = MessageSize::MIN, max = MessageSize::MAX)]
    SizeOutOfRange,
    /// A word that names no value of the enumeration.
    #[error("unknown value; expected one of: {expected}")]
    Unknown { expected: &'static str },
}

// === impl SendConnector ===

impl SendConnector {
    /// Checks the rules that span fields; single values are valid by construction.
    pub fn check(&self) -> Result<(), InvalidField> {
        if self.address_spaces.is_empty() {
            return Err(InvalidField::new("address_spaces", "", "must have at least one entry"));
        }
        if self.source_edges.is_empty() {
            return Err(InvalidField::new(
                "source_edges",
                "",
                "must name at least one edge that sends through this connector",
            ));
        }
        if let Routing::SmartHosts(hosts) = &self.routing
            && hosts.is_empty()
        {
            return Err(InvalidField::new("smart_hosts", "", "must have at least one entry, or route by DNS"));
        }
        if self.domain_secure_enabled && self.routing != Routing::Dns {
            return Err(InvalidField::new(
                "domain_secure_enabled",
                "true",
                "Domain Security requires DNS routing: the partner's certificate is matched \
                 against the recipient domain's MX hosts, so it cannot be used through a smart host \
                 (as in Exchange); route this connector by DNS or turn Domain Security off",
            ));
        }
        Ok(())
    }
}

// === impl ReceiveConnector ===

impl ReceiveConnector {
    /// Checks the rules that span fields; single values are valid by construction.
    pub fn check(&self) -> Result<(), InvalidField> {
        if self.bindings.is_empty() {
            return Err(InvalidField::new("bindings", "", "must have at least one ip:port"));
        }
        if self.auth_mechanisms.is_empty() {
            return Err(InvalidField::new("auth_mechanisms", "", "must have at least one entry"));
        }
        if self.permission_groups.is_empty() {
            return Err(InvalidField::new(
                "permission_groups",
                "",
                "must have at least one entry; without one no sender may submit mail",
            ));
        }
        if self.auth_mechanisms.contains(&AuthMechanism::None) && self.auth_mechanisms.len() > 1 {
            return Err(InvalidField::new(
                "auth_mechanisms",
                join(&self.auth_mechanisms),
                "'none' cannot be combined with other mechanisms",
            ));
        }
        if self.permission_groups.contains(&PermissionGroup::ExchangeServers) {
            let open = self.remote_ip_ranges.is_empty()
                || self.remote_ip_ranges.iter().any(|r| r.prefix_len() < if r.is_ipv4() { 8 } else { 32 });
            if open {
                return Err(InvalidField::new(
                    "remote_ip_ranges",
                    join(&self.remote_ip_ranges),
                    "a connector with the exchange-servers permission group relays to any domain, so it must \
                     be limited to the organization's own servers (e.g. --remote-ip-ranges 10.0.0.0/8); an \
                     empty list, or a range wider than /8 (IPv4) or /32 (IPv6), would make this edge an open relay",
                ));
            }
        }
        if self.domain_secure_enabled && !self.auth_mechanisms.contains(&AuthMechanism::Tls) {
            return Err(InvalidField::new(
                "domain_secure_enabled",
                "true",
                "Domain Security needs 'tls' in auth_mechanisms (Set-ReceiveConnector -DomainSecureEnabled \
                 $true -AuthMechanism TLS)",
            ));
        }
        Ok(())
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

// === impl ObjectName ===

impl ObjectName {
    /// Parses a name.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let valid_first = input.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let valid_rest = input.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid_first || !valid_rest || input.len() > 64 {
            return Err(ValueError::BadName);
        }
        Ok(Self(input.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ObjectName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ObjectName {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ObjectName> for String {
    fn from(value: ObjectName) -> Self {
        value.0
    }
}

// === impl MessageSize ===

impl MessageSize {
    /// Exchange's default for connectors: 10 MiB.
    pub const DEFAULT: Self = Self(10 * 1024 * 1024);
    /// Smallest allowed limit.
    pub const MIN: u64 = 1024;
    /// Largest allowed limit.
    pub const MAX: u64 = 2 * 1024 * 1024 * 1024;

    /// Checks the range.
    pub fn new(bytes: u64) -> Result<Self, ValueError> {
        if !(Self::MIN..=Self::MAX).contains(&bytes) {
            return Err(ValueError::SizeOutOfRange);
        }
        Ok(Self(bytes))
    }

    /// The limit in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl Default for MessageSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u64> for MessageSize {
    type Error = ValueError;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<MessageSize> for u64 {
    fn from(value: MessageSize) -> Self {
        value.0
    }
}

/// Implements `Display`/`FromStr` with kebab-case words for a plain enum.
macro_rules! words {
    ($type:ty, $expected:literal, { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $type {
            /// The word used in the CLI, the API's JSON and the database.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $word),+ }
            }
        }
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $type {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.to_ascii_lowercase().as_str() {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(ValueError::Unknown { expected: $expected }),
                }
            }
        }
    };
}

words!(ProtocolLoggingLevel, "none, verbose", { None => "none", Verbose => "verbose" });
words!(AuthMechanism, "none, tls, basic-auth, basic-auth-require-tls, external-authoritative", {
    None => "none",
    Tls => "tls",
    BasicAuth => "basic-auth",
    BasicAuthRequireTls => "basic-auth-require-tls",
    ExternalAuthoritative => "external-authoritative",
});
words!(PermissionGroup, "anonymous-users, partners, exchange-users, exchange-servers", {
    AnonymousUsers => "anonymous-users",
    Partners => "partners",
    ExchangeUsers => "exchange-users",
    ExchangeServers => "exchange-servers",
});

#[cfg(test)]
mod tests {
    use super::*;

    fn send_connector() -> SendConnector {
        SendConnector {
            name: ObjectName::parse("Internet").unwrap(),
            address_spaces: vec![AddressSpace::Any],
            routing: Routing::Dns,
            fqdn: None,
            domain_secure_enabled: true,
            dane_enabled: true,
            mta_sts_enabled: true,
            protocol_logging_level: ProtocolLoggingLevel::Verbose,
            source_edges: vec![ObjectName::parse("mail1").unwrap()],
            max_message_size: MessageSize::DEFAULT,
        }
    }

    fn receive_connector() -> ReceiveConnector {
        ReceiveConnector {
            edge: ObjectName::parse("mail1").unwrap(),
            name: ObjectName::parse("Inet").unwrap(),
            bindings: vec![Binding::parse("0.0.0.0:25").unwrap()],
            remote_ip_ranges: vec![],
            fqdn: None,
            auth_mechanisms: vec![AuthMechanism::Tls],
            domain_secure_enabled: true,
            permission_groups: vec![PermissionGroup::AnonymousUsers, PermissionGroup::Partners],
            protocol_logging_level: ProtocolLoggingLevel::None,
            max_message_size: MessageSize::DEFAULT,
        }
    }

    #[test]
    fn the_papers_connectors_pass() {
        assert_eq!(send_connector().check(), Ok(()));
        assert_eq!(receive_connector().check(), Ok(()));
    }

    #[test]
    fn refuses_domain_security_through_a_smart_host() {
        let mut connector = send_connector();
        connector.routing = Routing::SmartHosts(vec![SmartHost::parse("relay.contoso.com").unwrap()]);
        let error = connector.check().unwrap_err();
        assert_eq!(error.field, "domain_secure_enabled");
        assert!(error.rule.contains("requires DNS routing"), "{error}");
    }

    #[test]
    fn refuses_empty_lists() {
        let mut connector = send_connector();
        connector.address_spaces.clear();
        assert_eq!(connector.check().unwrap_err().field, "address_spaces");
        let mut connector = send_connector();
        connector.source_edges.clear();
        assert_eq!(connector.check().unwrap_err().field, "source_edges");
        let mut connector = receive_connector();
        connector.bindings.clear();
        assert_eq!(connector.check().unwrap_err().field, "bindings");
        let mut connector = receive_connector();
        connector.permission_groups.clear();
        assert_eq!(connector.check().unwrap_err().field, "permission_groups");
    }

    #[test]
    fn refuses_receive_domain_security_without_tls() {
        let mut connector = receive_connector();
        connector.auth_mechanisms = vec![AuthMechanism::None];
        let error = connector.check().unwrap_err();
        assert_eq!(error.field, "domain_secure_enabled");
        assert!(error.rule.contains("'tls'"), "{error}");
    }

    #[test]
    fn refuses_an_open_relay_connector() {
        let mut connector = receive_connector();
        connector.permission_groups.push(PermissionGroup::ExchangeServers);
        assert_eq!(connector.check().unwrap_err().field, "remote_ip_ranges");
        connector.remote_ip_ranges = vec![IpRange::parse("0.0.0.0/0").unwrap()];
        assert!(connector.check().unwrap_err().rule.contains("open relay"));
        connector.remote_ip_ranges = vec![IpRange::parse("2000::/8").unwrap()];
        assert!(connector.check().unwrap_err().rule.contains("open relay"), "IPv6 ranges are held to /32");
        connector.remote_ip_ranges = vec![
            IpRange::parse("10.0.0.0/8").unwrap(),
            IpRange::parse("127.0.0.1").unwrap(),
            IpRange::parse("2001:db8::/32").unwrap(),
        ];
        assert_eq!(connector.check(), Ok(()));
    }

    #[test]
    fn refuses_none_combined_with_other_mechanisms() {
        let mut connector = receive_connector();
        connector.auth_mechanisms = vec![AuthMechanism::None, AuthMechanism::Tls];
        assert_eq!(connector.check().unwrap_err().field, "auth_mechanisms");
    }

    #[test]
    fn names_and_sizes_have_limits() {
        assert!(ObjectName::parse("Inet").is_ok());
        assert!(ObjectName::parse("mail-1.edge_a").is_ok());
        assert_eq!(ObjectName::parse(""), Err(ValueError::BadName));
        assert_eq!(ObjectName::parse("-x"), Err(ValueError::BadName));
        assert_eq!(ObjectName::parse("has space"), Err(ValueError::BadName));
        assert_eq!(ObjectName::parse(&"a".repeat(65)), Err(ValueError::BadName));
        assert_eq!(MessageSize::new(1023), Err(ValueError::SizeOutOfRange));
        assert_eq!(MessageSize::new(MessageSize::MAX + 1), Err(ValueError::SizeOutOfRange));
        assert_eq!(MessageSize::new(1024).unwrap().bytes(), 1024);
    }

    #[test]
    fn words_parse_case_insensitively_and_name_the_choices() {
        assert_eq!("Verbose".parse::<ProtocolLoggingLevel>(), Ok(ProtocolLoggingLevel::Verbose));
        assert_eq!("TLS".parse::<AuthMechanism>(), Ok(AuthMechanism::Tls));
        let error = "partner".parse::<PermissionGroup>().unwrap_err();
        assert!(error.to_string().contains("partners"), "{error}");
    }
}
