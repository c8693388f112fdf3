//! The organization-wide transport config (Exchange's `Set-TransportConfig`).

use serde::{Deserialize, Serialize};

use crate::domain::{Domain, DomainPattern};

/// The secure-domain lists that turn on Domain Security per partner domain, and
/// how edges reach CRL distribution points.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportConfig {
    /// `TLSSendDomainSecureList`: outbound mail to these domains requires mutual TLS.
    pub tls_send_domain_secure_list: Vec<DomainPattern>,
    /// `TLSReceiveDomainSecureList`: inbound mail from these domains requires mutual TLS.
    pub tls_receive_domain_secure_list: Vec<DomainPattern>,
    /// The HTTP proxy for CRL fetches; `None` fetches directly.
    #[serde(default)]
    pub crl_proxy: Option<CrlProxy>,
    /// Hosts fetched directly despite the proxy: names, `*.suffix`, or `<local>` (dotless names).
    #[serde(default)]
    pub crl_proxy_bypass: Vec<ProxyBypass>,
}

/// An HTTP proxy, `http://host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CrlProxy {
    host: String,
    port: u16,
}

/// One bypass entry: `<local>`, a host name or address, or `*.suffix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProxyBypass(String);

/// Why a proxy setting is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Not `http://host:port`.
    #[error("must be http://host:port (an HTTP proxy), or none")]
    Shape,
    /// A host that is not a name or an address.
    #[error("host {0:?} is not a host name or IP address")]
    Host(String),
    /// A bypass entry that is not a host, `*.suffix` or `<local>`.
    #[error("must be a host name, an address, *.suffix or <local>")]
    Bypass,
}

impl TransportConfig {
    /// True when outbound mail to `domain` requires Domain Security.
    pub fn requires_secure_send(&self, domain: &Domain) -> bool {
        self.tls_send_domain_secure_list.iter().any(|p| p.covers(domain))
    }

    /// True when inbound mail from `domain` requires Domain Security.
    pub fn requires_secure_receive(&self, domain: &Domain) -> bool {
        self.tls_receive_domain_secure_list.iter().any(|p| p.covers(domain))
    }
}

// === impl CrlProxy ===

impl CrlProxy {
    /// Parses `http://proxy:3128` (port 80 when omitted).
    pub fn parse(input: &str) -> Result<Self, ProxyError> {
        let rest = input.trim().strip_prefix("http://").ok_or(ProxyError::Shape)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '@', '?', '#']) {
            return Err(ProxyError::Shape);
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, _)) if !host.ends_with(']') && host.contains(':') => (rest, 80),
            Some((host, port)) => (host, port.parse::<u16>().ok().filter(|p| *p > 0).ok_or(ProxyError::Shape)?),
            None => (rest, 80),
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_err() && Domain::parse(bare).is_err() && !is_label(bare) {
            return Err(ProxyError::Host(host.to_owned()));
        }
        Ok(Self { host: host.to_ascii_lowercase(), port })
    }
}

impl std::fmt::Display for CrlProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

impl TryFrom<String> for CrlProxy {
    type Error = ProxyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CrlProxy> for String {
    fn from(value: CrlProxy) -> Self {
        value.to_string()
    }
}

// === impl ProxyBypass ===

impl ProxyBypass {
    /// Parses one entry.
    pub fn parse(input: &str) -> Result<Self, ProxyError> {
        let entry = input.trim().to_ascii_lowercase();
        let name = entry.strip_prefix("*.").or_else(|| entry.strip_prefix('.')).unwrap_or(&entry);
        let valid = entry == "<local>"
            || name.parse::<std::net::IpAddr>().is_ok()
            || Domain::parse(name).is_ok()
            || is_label(name);
        if valid { Ok(Self(entry)) } else { Err(ProxyError::Bypass) }
    }

    /// The entry as given (lower-case).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProxyBypass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ProxyBypass {
    type Error = ProxyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ProxyBypass> for String {
    fn from(value: ProxyBypass) -> Self {
        value.0
    }
}

/// A single host label (`proxy`, `localhost`): valid as a host on a LAN.
fn is_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_parse_and_print() {
        assert_eq!(CrlProxy::parse("http://proxy:3128").unwrap().to_string(), "http://proxy:3128");
        assert_eq!(CrlProxy::parse("http://Proxy.Contoso.com").unwrap().to_string(), "http://proxy.contoso.com:80");
        assert_eq!(CrlProxy::parse("http://10.0.0.1:8080/").unwrap().to_string(), "http://10.0.0.1:8080");
        for bad in [
            "proxy:3128",
            "https://proxy:3128",
            "http://",
            "http://proxy:0",
            "http://proxy:x",
            "http://u@proxy:1",
            "http://a..b:1",
        ] {
            assert!(CrlProxy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bypass_entries_parse() {
        for good in ["<local>", "crl.contoso.com", "*.contoso.com", ".contoso.com", "10.0.0.1", "intranet"] {
            assert!(ProxyBypass::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "*.", "http://x"] {
            assert_eq!(ProxyBypass::parse(bad), Err(ProxyError::Bypass), "{bad}");
        }
    }
}
