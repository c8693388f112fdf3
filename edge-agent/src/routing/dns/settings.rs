//! `[dns]` settings, and the static MX and host tables parsed from them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::proto::rr::Name;
use serde::Deserialize;

/// DNS settings of the edge: where to ask, and static tables that win over DNS.
///
/// ```toml
/// [dns]
/// resolver = "127.0.0.1:5353"
/// timeout = "2s"
///
/// [dns.mx]
/// "woodgrovebank.com" = [{ preference = 10, exchange = "mail1.woodgrovebank.com" }]
///
/// [dns.hosts]
/// "mail1.woodgrovebank.com" = ["127.0.0.1:2526", "::1"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSettings {
    /// DNS server to ask (e.g. "127.0.0.1:5353"); None = the system's /etc/resolv.conf.
    pub resolver: Option<SocketAddr>,
    /// Static MX records by domain, consulted before DNS. Names are case-insensitive and
    /// may end in a dot. An exchange of "." is a null MX (RFC 7505) and must be the only one.
    pub mx: BTreeMap<String, Vec<StaticMx>>,
    /// Static addresses by host name, consulted before DNS: each entry is an IP address or
    /// `ip:port` (`[v6]:port`); an entry without a port uses `smtp_port`. A domain listed here
    /// but not in `mx` routes to these addresses as its implicit MX.
    pub hosts: BTreeMap<String, Vec<String>>,
    /// Port for next hops found by MX/A lookup (default 25).
    pub smtp_port: u16,
    /// Per-query timeout (default 5 s).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Use only the static tables; anything not in them fails as a temporary error
    /// "not in the static routing table" (tests, air-gapped labs). No resolver is built.
    pub static_only: bool,
    /// Whose DNSSEC validation DANE believes (docs/decisions/0008): `auto` (default)
    /// believes the resolver's AD bit only when the resolver is on a loopback address,
    /// `trust-resolver` believes a remote one too (a resolver reached over a trusted
    /// network), `off` never (no DANE).
    pub dnssec: DnssecMode,
}

/// `dns.dnssec`: whether the resolver's AD bit is believed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnssecMode {
    /// Believe a loopback resolver only.
    #[default]
    Auto,
    /// Believe the configured resolver wherever it is.
    TrustResolver,
    /// Believe no AD bit: DANE never applies.
    Off,
}

/// One static MX record of `[dns.mx]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticMx {
    /// Lower is tried first.
    pub preference: u16,
    /// The mail exchanger's host name, or "." for a null MX.
    pub exchange: String,
}

/// A `[dns]` setting that cannot be used; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsConfigError {
    /// A key of `dns.mx` or `dns.hosts` is not a domain name.
    #[error("dns.{table}.\"{name}\": not a domain name")]
    BadName {
        /// `mx` or `hosts`.
        table: &'static str,
        /// The key as written.
        name: String,
    },
    /// Two keys of one table name the same host once case and trailing dots are ignored.
    #[error("dns.{table}.\"{name}\": listed twice (names are case-insensitive)")]
    DuplicateName {
        /// `mx` or `hosts`.
        table: &'static str,
        /// The second key as written.
        name: String,
    },
    /// A `dns.mx` entry lists no records.
    #[error("dns.mx.\"{domain}\": no MX records listed")]
    NoExchanges {
        /// The key as written.
        domain: String,
    },
    /// An MX exchange is neither a host name nor ".".
    #[error("dns.mx.\"{domain}\": exchange \"{exchange}\" is not a host name")]
    BadExchange {
        /// The key as written.
        domain: String,
        /// The exchange as written.
        exchange: String,
    },
    /// A null MX listed next to other exchanges (RFC 7505 §3 forbids it).
    #[error("dns.mx.\"{domain}\": a null MX (\".\") must be the domain's only MX")]
    MixedNullMx {
        /// The key as written.
        domain: String,
    },
    /// A `dns.hosts` entry lists no addresses.
    #[error("dns.hosts.\"{host}\": no addresses listed")]
    NoAddresses {
        /// The key as written.
        host: String,
    },
    /// A `dns.hosts` entry is neither an IP address nor `ip:port` (port 0 included).
    #[error("dns.hosts.\"{host}\": \"{entry}\" is not an IP address or ip:port")]
    BadAddress {
        /// The key as written.
        host: String,
        /// The entry as written.
        entry: String,
    },
    /// `dns.smtp_port` is 0.
    #[error("dns.smtp_port: 0 is not a port")]
    ZeroPort,
    /// `dns.timeout` is 0.
    #[error("dns.timeout: must be more than zero")]
    ZeroTimeout,
    /// `dns.resolver` is not set and the system resolver configuration is unusable.
    #[error("dns.resolver: not set, and the system resolver configuration could not be read: {reason}")]
    SystemConfig {
        /// Why reading it failed.
        reason: String,
    },
    /// The resolver could not be built from `dns.resolver`.
    #[error("dns.resolver: {reason}")]
    Resolver {
        /// Why building it failed.
        reason: String,
    },
}

// === impl DnsSettings ===

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            resolver: None,
            mx: BTreeMap::new(),
            hosts: BTreeMap::new(),
            smtp_port: DEFAULT_SMTP_PORT,
            timeout: DEFAULT_TIMEOUT,
            static_only: false,
            dnssec: DnssecMode::Auto,
        }
    }
}

/// A host or domain name: ASCII (A-labels), lower-case, without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct HostName(String);

/// One address of a `[dns.hosts]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HostAddress {
    ip: IpAddr,
    port: Option<u16>,
}

/// The MX records of a domain, from `[dns.mx]` or from DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MxSet {
    /// RFC 7505 null MX.
    Null,
    /// (preference, exchange) pairs, in no particular order.
    Exchanges(Vec<(u16, HostName)>),
}

/// `[dns.mx]` and `[dns.hosts]` with their names parsed.
#[derive(Debug, Clone, Default)]
pub(super) struct StaticTables {
    mx: HashMap<HostName, MxSet>,
    hosts: HashMap<HostName, Vec<HostAddress>>,
}

// === impl HostName ===

impl HostName {
    /// Parses a name: case-insensitive, one trailing dot tolerated, U-labels turned into
    /// A-labels; labels of letters, digits, `-` and `_`.
    pub(super) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_suffix('.').unwrap_or(text);
        let ascii = if text.is_ascii() {
            text.to_ascii_lowercase()
        } else {
            let name = Name::from_utf8(text).ok()?;
            name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
        };
        is_valid_name(&ascii).then_some(Self(ascii))
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl HostAddress ===

impl HostAddress {
    /// Parses `ip`, `[ip]`, `ip:port` or `[ipv6]:port`.
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(address) = text.parse::<SocketAddr>() {
            return (address.port() != 0).then_some(Self { ip: address.ip(), port: Some(address.port()) });
        }
        let bare = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(text);
        let ip = bare.parse::<IpAddr>().ok()?;
        Some(Self { ip, port: None })
    }

    /// The address to connect to, with `default_port` when the entry gave none.
    pub(super) fn socket_addr(self, default_port: u16) -> SocketAddr {
        SocketAddr::new(self.ip, self.port.unwrap_or(default_port))
    }
}

// === impl StaticTables ===

impl StaticTables {
    /// Parses the tables of `settings`, naming the first bad entry.
    pub(super) fn parse(settings: &DnsSettings) -> Result<Self, DnsConfigError> {
        let mut mx = HashMap::new();
        for (domain, records) in &settings.mx {
            let name = parse_key("mx", domain)?;
            let set = parse_mx_set(domain, records)?;
            if mx.insert(name, set).is_some() {
                return Err(duplicate("mx", domain));
            }
        }
        let mut hosts = HashMap::new();
        for (host, entries) in &settings.hosts {
            let name = parse_key("hosts", host)?;
            let addresses = parse_addresses(host, entries)?;
            if hosts.insert(name, addresses).is_some() {
                return Err(duplicate("hosts", host));
            }
        }
        Ok(Self { mx, hosts })
    }

    /// The static MX records of `domain`, if it is listed.
    pub(super) fn mx(&self, domain: &HostName) -> Option<&MxSet> {
        self.mx.get(domain)
    }

    /// The static addresses of `host`, if it is listed.
    pub(super) fn addresses(&self, host: &HostName) -> Option<&[HostAddress]> {
        self.hosts.get(host).map(Vec::as_slice)
    }
}

/// Checks the numeric settings: a port and a timeout of zero are mistakes.
pub(super) fn check_limits(settings: &DnsSettings) -> Result<(), DnsConfigError> {
    if settings.smtp_port == 0 {
        return Err(DnsConfigError::ZeroPort);
    }
    if settings.timeout.is_zero() {
        return Err(DnsConfigError::ZeroTimeout);
    }
    Ok(())
}

fn parse_key(table: &'static str, key: &str) -> Result<HostName, DnsConfigError> {
    HostName::parse(key).ok_or_else(|| DnsConfigError::BadName { table, name: key.to_owned() })
}

fn duplicate(table: &'static str, key: &str) -> DnsConfigError {
    DnsConfigError::DuplicateName { table, name: key.to_owned() }
}

fn parse_mx_set(domain: &str, records: &[StaticMx]) -> Result<MxSet, DnsConfigError> {
    let is_null = |record: &StaticMx| record.exchange.trim() == ".";
    match records {
        [] => Err(DnsConfigError::NoExchanges { domain: domain.to_owned() }),
        [only] if is_null(only) => Ok(MxSet::Null),
        _ if records.iter().any(is_null) => Err(DnsConfigError::MixedNullMx { domain: domain.to_owned() }),
        _ => records
            .iter()
            .map(|record| {
                let exchange = HostName::parse(&record.exchange).ok_or_else(|| DnsConfigError::BadExchange {
                    domain: domain.to_owned(),
                    exchange: record.exchange.clone(),
                })?;
                Ok((record.preference, exchange))
            })
            .collect::<Result<_, _>>()
            .map(MxSet::Exchanges),
    }
}

fn parse_addresses(host: &str, entries: &[String]) -> Result<Vec<HostAddress>, DnsConfigError> {
    if entries.is_empty() {
        return Err(DnsConfigError::NoAddresses { host: host.to_owned() });
    }
    entries
        .iter()
        .map(|entry| {
            HostAddress::parse(entry)
                .ok_or_else(|| DnsConfigError::BadAddress { host: host.to_owned(), entry: entry.clone() })
        })
        .collect()
}

/// RFC 1035 limits, with `_` allowed (service labels, lab names) and no other punctuation.
fn is_valid_name(name: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=MAX_LABEL_LEN).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (1..=MAX_NAME_LEN).contains(&name.len()) && name.split('.').all(label_ok)
}

const DEFAULT_SMTP_PORT: u16 = 25;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_LABEL_LEN: usize = 63;
const MAX_NAME_LEN: usize = 253;
