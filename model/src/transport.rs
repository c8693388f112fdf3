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

    /// The `TLSReceiveDomainSecureList` entry that covers a sender's domain as the
    /// peer wrote it (see [`covering_entry`]).
    pub fn secure_receive_entry(&self, raw_domain: &str) -> Option<&DomainPattern> {
        covering_entry(&self.tls_receive_domain_secure_list, raw_domain)
    }

    /// The `TLSSendDomainSecureList` entry that covers a recipient's domain (see
    /// [`covering_entry`]).
    pub fn secure_send_entry(&self, raw_domain: &str) -> Option<&DomainPattern> {
        covering_entry(&self.tls_send_domain_secure_list, raw_domain)
    }
}

/// The most entries a secure-domain list may hold: far more than any organization's
/// partners, and a snapshot with both lists full still fits every message limit.
pub const MAX_SECURE_LIST_ENTRIES: usize = 100_000;

/// Refuses a secure-domain list longer than [`MAX_SECURE_LIST_ENTRIES`] (every path
/// that sets one: the admin API's replace and edit, `config apply`).
pub fn check_secure_list_size(field: &str, list: &[DomainPattern]) -> Result<(), crate::InvalidField> {
    if list.len() > MAX_SECURE_LIST_ENTRIES {
        return Err(crate::InvalidField::new(
            field,
            "",
            format!("at most {MAX_SECURE_LIST_ENTRIES} entries (this change makes {})", list.len()),
        ));
    }
    Ok(())
}

/// The most specific entry of `list` covering `raw_domain`: an exact entry before a
/// `*.` one, a longer domain before a shorter one. A name that does not parse is
/// judged by its raw labels ([`DomainPattern::could_cover`]), never taken as
/// unlisted because it is malformed.
pub fn covering_entry<'a>(list: &'a [DomainPattern], raw_domain: &str) -> Option<&'a DomainPattern> {
    let parsed = Domain::parse(raw_domain).ok();
    let covered = |pattern: &&DomainPattern| match &parsed {
        Some(domain) => pattern.covers(domain),
        None => pattern.could_cover(raw_domain),
    };
    list.iter()
        .filter(covered)
        .max_by_key(|pattern| (matches!(pattern, DomainPattern::Exact(_)), pattern.domain().as_str().len()))
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

    fn list(entries: &[&str]) -> Vec<DomainPattern> {
        entries.iter().map(|e| DomainPattern::parse(e).unwrap()).collect()
    }

    fn entry(list: &[DomainPattern], raw: &str) -> Option<String> {
        covering_entry(list, raw).map(ToString::to_string)
    }

    #[test]
    fn the_most_specific_entry_covers_a_sender() {
        let list = list(&["*.woodgrovebank.com", "woodgrovebank.com", "*.us.woodgrovebank.com", "fabrikam.com"]);
        assert_eq!(entry(&list, "woodgrovebank.com").as_deref(), Some("woodgrovebank.com"));
        assert_eq!(entry(&list, "WoodGroveBank.COM.").as_deref(), Some("woodgrovebank.com"));
        assert_eq!(entry(&list, "mail.woodgrovebank.com").as_deref(), Some("*.woodgrovebank.com"));
        assert_eq!(entry(&list, "a.us.woodgrovebank.com").as_deref(), Some("*.us.woodgrovebank.com"));
        assert_eq!(entry(&list, "mail.fabrikam.com"), None, "an exact entry covers no subdomain");
        assert_eq!(entry(&list, "notwoodgrovebank.com"), None);
        assert_eq!(entry(&list, "woodgrovebank.com.evil.example"), None);
    }

    #[test]
    fn a_malformed_spelling_of_a_listed_domain_is_still_covered() {
        let list = list(&["*.woodgrovebank.com", "fabrikam.com"]);
        for raw in [
            "xn--55555555.woodgrovebank.com",
            "XN--55555555.WoodGroveBank.com",
            "a..woodgrovebank.com",
            "-bad-.woodgrovebank.com",
            "under_score.woodgrovebank.com",
            "xn--55555555.woodgrovebank\u{3002}com",
            "r\u{00e9}\u{200d}x.woodgrovebank.com",
            "woodgrovebank.com..",
        ] {
            assert_eq!(entry(&list, raw).as_deref(), Some("*.woodgrovebank.com"), "{raw:?}");
        }
        assert_eq!(entry(&list, "fabrikam..com").as_deref(), Some("fabrikam.com"));
        assert_eq!(entry(&list, "x_y.fabrikam.com"), None, "an exact entry covers no subdomain, malformed or not");
        assert_eq!(entry(&list, "xn--55555555.example"), None);
    }

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
