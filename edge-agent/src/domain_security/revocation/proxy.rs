//! Where CRL requests go: straight to the distribution point, or through an HTTP proxy
//! unless the host is on the bypass list (the paper's `proxycfg -p proxy "<local>"`).

use std::fmt;

use super::RevocationError;

/// Where CRLs are fetched from: directly, or through an HTTP proxy except for bypassed hosts
/// (the paper's `proxycfg -p proxy "<local>"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// `http://proxy:3128`; None = direct.
    pub proxy: Option<ProxyAddress>,
    /// Hosts that skip the proxy, lower case: exact names, `*.suffix` / `.suffix`, and
    /// `<local>` (any host name without a dot, as in WinHTTP/proxycfg).
    pub bypass: Vec<String>,
}

/// An HTTP proxy: host and port (only `http://` proxies; CRLs need no tunnel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAddress {
    /// Host name or IP address (IPv6 without brackets), lower case.
    pub host: String,
    /// TCP port; 80 when the setting names none.
    pub port: u16,
}

// === impl ProxySettings ===

impl ProxySettings {
    /// Parses a proxy (`""` or `none` = direct; `http://host:port`, `host:port` or `host`,
    /// port 80 by default) and a bypass list separated by `;` or `,`.
    pub fn parse(proxy: &str, bypass: &str) -> Result<Self, RevocationError> {
        let trimmed = proxy.trim();
        let proxy = if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
            None
        } else {
            Some(ProxyAddress::parse(trimmed)?)
        };
        let bypass = bypass
            .split([';', ','])
            .map(|entry| entry.trim().to_ascii_lowercase())
            .filter(|entry| !entry.is_empty())
            .map(|entry| check_bypass_entry(entry, proxy_value(trimmed)))
            .collect::<Result<_, _>>()?;
        Ok(Self { proxy, bypass })
    }

    /// The proxy to use for `host`, or None to connect directly.
    pub fn proxy_for(&self, host: &str) -> Option<&ProxyAddress> {
        let proxy = self.proxy.as_ref()?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let bypassed = self.bypass.iter().any(|entry| bypass_matches(entry, &host));
        (!bypassed).then_some(proxy)
    }
}

// === impl ProxyAddress ===

impl ProxyAddress {
    fn parse(value: &str) -> Result<Self, RevocationError> {
        let bad = |reason: &str| RevocationError::BadProxy { value: value.to_owned(), reason: reason.to_owned() };
        let rest = match value.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some(_) => return Err(bad("only http:// proxies are supported")),
            None => value,
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(bad("a proxy is host:port, without a path"));
        }
        if authority.contains('@') {
            return Err(bad("proxy credentials are not supported"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("expected host:port"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':')) {
            return Err(bad("the host name has characters a host name cannot have"));
        }
        let port = match port {
            None => DEFAULT_HTTP_PORT,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port != 0 => port,
                _ => return Err(bad("the port is not a number from 1 to 65535")),
            },
        };
        Ok(Self { host: host.to_ascii_lowercase(), port })
    }
}

impl fmt::Display for ProxyAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

// === helpers ===

/// Splits `host[:port]` or `[v6][:port]`; None when the brackets do not close.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match authority.split_once(':') {
        Some((host, port)) => Some((host, Some(port))),
        None => Some((authority, None)),
    }
}

/// Bypass entries are names, not URLs: refuse the obvious mistakes, naming the list.
fn check_bypass_entry(entry: String, proxy: &str) -> Result<String, RevocationError> {
    let looks_like_name =
        entry == LOCAL || entry.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '*' | ':'));
    if looks_like_name {
        return Ok(entry);
    }
    Err(RevocationError::BadProxy {
        value: format!("{proxy} bypass {entry}"),
        reason: "a bypass entry is a host name, *.suffix, .suffix or <local>".to_owned(),
    })
}

fn proxy_value(proxy: &str) -> &str {
    if proxy.is_empty() { "none" } else { proxy }
}

/// `host` is lower case without a trailing dot; `entry` is lower case.
fn bypass_matches(entry: &str, host: &str) -> bool {
    if entry == LOCAL {
        return !host.contains('.') && !host.contains(':');
    }
    if entry == "*" {
        return true;
    }
    if let Some(suffix) = entry.strip_prefix("*.").or_else(|| entry.strip_prefix('.')) {
        return host.strip_suffix(suffix).is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'));
    }
    entry.trim_end_matches('.') == host
}

const LOCAL: &str = "<local>";
const DEFAULT_HTTP_PORT: u16 = 80;
