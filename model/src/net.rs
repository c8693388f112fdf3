//! Network addresses in connector settings: where a receive connector listens,
//! which remote addresses it serves, and the smart hosts a send connector uses.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use serde::{Deserialize, Serialize};

use crate::domain::{Domain, DomainError};

/// A receive-connector binding: an IP address and a non-zero port (`0.0.0.0:25`, `[::]:25`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Binding(SocketAddr);

/// A send-connector smart host: a host name or IP literal and a port (default 25).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SmartHost {
    host: SmartHostName,
    port: u16,
}

/// The host part of a [`SmartHost`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SmartHostName {
    /// A DNS name, resolved by A/AAAA (not MX).
    Name(Domain),
    /// A literal address.
    Ip(IpAddr),
}

/// Remote addresses a receive connector serves: a CIDR block or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpRange(ipnet::IpNet);

/// Why an address setting does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// A binding that is not `ip:port`.
    #[error("expected ip:port, e.g. 0.0.0.0:25 or [::]:25")]
    BindingSyntax,
    /// Port 0 would pick a random port, which no partner could find.
    #[error("port 0 is not allowed; give the port to listen on, e.g. 25")]
    ZeroPort,
    /// A port that is not a number from 1 to 65535.
    #[error("port {port:?} is not a number from 1 to 65535")]
    BadPort { port: String },
    /// A smart host name that is not a domain.
    #[error("host is neither an IP address nor a valid domain name: {0}")]
    BadHost(DomainError),
    /// A range that is neither CIDR nor an address.
    #[error("expected an address or a CIDR block, e.g. 10.0.0.0/8 or 192.0.2.7")]
    RangeSyntax,
    /// A CIDR block with bits set below its prefix, which usually means a typo.
    #[error("host bits are set below the /{prefix} prefix; did you mean {network}?")]
    HostBitsSet { prefix: u8, network: String },
}

// === impl Binding ===

impl Binding {
    /// Parses `ip:port`.
    pub fn parse(input: &str) -> Result<Self, NetError> {
        let address: SocketAddr = input.parse().map_err(|_| NetError::BindingSyntax)?;
        if address.port() == 0 {
            return Err(NetError::ZeroPort);
        }
        Ok(Self(address))
    }

    /// The socket address to bind.
    pub fn socket_addr(&self) -> SocketAddr {
        self.0
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Binding {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Binding {
    type Error = NetError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Binding> for String {
    fn from(value: Binding) -> Self {
        value.to_string()
    }
}

// === impl SmartHost ===

impl SmartHost {
    /// Parses `host`, `host:port`, `192.0.2.1:2525` or `[2001:db8::1]:25`.
    pub fn parse(input: &str) -> Result<Self, NetError> {
        if let Ok(address) = input.parse::<SocketAddr>() {
            if address.port() == 0 {
                return Err(NetError::ZeroPort);
            }
            return Ok(Self { host: SmartHostName::Ip(address.ip()), port: address.port() });
        }
        if let Ok(ip) = input.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return Ok(Self { host: SmartHostName::Ip(ip), port: DEFAULT_SMTP_PORT });
        }
        let (host, port) = match input.rsplit_once(':') {
            Some((host, port)) => (host, parse_port(port)?),
            None => (input, DEFAULT_SMTP_PORT),
        };
        let name = Domain::parse(host).map_err(NetError::BadHost)?;
        Ok(Self { host: SmartHostName::Name(name), port })
    }

    /// The host to connect to.
    pub fn host(&self) -> &SmartHostName {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for SmartHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            SmartHostName::Name(name) => write!(f, "{name}:{}", self.port),
            SmartHostName::Ip(ip) => write!(f, "{}", SocketAddr::new(*ip, self.port)),
        }
    }
}

impl FromStr for SmartHost {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for SmartHost {
    type Error = NetError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SmartHost> for String {
    fn from(value: SmartHost) -> Self {
        value.to_string()
    }
}

// === impl IpRange ===

impl IpRange {
    /// Parses `10.0.0.0/8` or a single address (a /32 or /128).
    pub fn parse(input: &str) -> Result<Self, NetError> {
        if let Ok(ip) = input.parse::<IpAddr>() {
            return Ok(Self(ipnet::IpNet::from(ip)));
        }
        let net: ipnet::IpNet = input.parse().map_err(|_| NetError::RangeSyntax)?;
        if net.trunc() != net {
            return Err(NetError::HostBitsSet { prefix: net.prefix_len(), network: net.trunc().to_string() });
        }
        Ok(Self(net))
    }

    /// The prefix length: larger is more specific (a connector's most specific
    /// matching range decides which connector serves a client).
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// True for an IPv4 range.
    pub fn is_ipv4(&self) -> bool {
        matches!(self.0, ipnet::IpNet::V4(_))
    }

    /// True when `address` is inside the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&address)
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl FromStr for IpRange {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for IpRange {
    type Error = NetError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<IpRange> for String {
    fn from(value: IpRange) -> Self {
        value.to_string()
    }
}

fn parse_port(port: &str) -> Result<u16, NetError> {
    match port.parse::<u16>() {
        Ok(0) => Err(NetError::ZeroPort),
        Ok(port) => Ok(port),
        Err(_) => Err(NetError::BadPort { port: port.to_owned() }),
    }
}

const DEFAULT_SMTP_PORT: u16 = 25;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_need_ip_and_nonzero_port() {
        assert_eq!(Binding::parse("0.0.0.0:25").unwrap().to_string(), "0.0.0.0:25");
        assert_eq!(Binding::parse("[::]:2525").unwrap().to_string(), "[::]:2525");
        assert_eq!(Binding::parse("0.0.0.0"), Err(NetError::BindingSyntax));
        assert_eq!(Binding::parse("mail.contoso.com:25"), Err(NetError::BindingSyntax));
        assert_eq!(Binding::parse("127.0.0.1:0"), Err(NetError::ZeroPort));
        assert_eq!(Binding::parse("127.0.0.1:70000"), Err(NetError::BindingSyntax));
    }

    #[test]
    fn smart_hosts_take_names_and_literals_with_default_port() {
        assert_eq!(SmartHost::parse("Relay.Contoso.com").unwrap().to_string(), "relay.contoso.com:25");
        assert_eq!(SmartHost::parse("relay.contoso.com:587").unwrap().port(), 587);
        assert_eq!(SmartHost::parse("192.0.2.1").unwrap().to_string(), "192.0.2.1:25");
        assert_eq!(SmartHost::parse("[2001:db8::1]:2525").unwrap().to_string(), "[2001:db8::1]:2525");
        assert_eq!(SmartHost::parse("relay.contoso.com:0"), Err(NetError::ZeroPort));
        assert_eq!(SmartHost::parse("relay.contoso.com:smtp"), Err(NetError::BadPort { port: "smtp".into() }));
        assert!(matches!(SmartHost::parse("relay..com"), Err(NetError::BadHost(_))));
    }

    #[test]
    fn ranges_take_cidr_or_single_addresses() {
        let range = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(range.contains("10.1.2.3".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!range.contains("11.0.0.1".parse().unwrap()));
        assert_eq!(IpRange::parse("127.0.0.1").unwrap().to_string(), "127.0.0.1");
        assert_eq!(
            IpRange::parse("10.1.0.0/8"),
            Err(NetError::HostBitsSet { prefix: 8, network: "10.0.0.0/8".into() })
        );
        assert_eq!(IpRange::parse("10.0.0.0/33"), Err(NetError::RangeSyntax));
    }
}
