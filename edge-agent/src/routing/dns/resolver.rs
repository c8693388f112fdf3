//! [`MxResolver`]: static tables first, then DNS, ordered as RFC 5321 §5.1 asks.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::{Instrument, debug};

use super::lookup::{Answer, DnsClient};
use super::settings::{self, DnsConfigError, DnsSettings, DnssecMode, HostName, MxSet, StaticTables};
use super::validated::ValidatingStub;
use super::{NextHop, RouteError};

/// Finds the next hops for recipient domains and smart hosts.
///
/// Cheap to clone: clones share the static tables and the resolver with its cache.
#[derive(Debug, Clone)]
pub struct MxResolver {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tables: StaticTables,
    smtp_port: u16,
    /// `None` with `static_only`: nothing goes to DNS.
    dns: Option<DnsClient>,
    /// The resolver whose AD bit DANE believes, or why there is none.
    validating: Result<ValidatingStub, String>,
}

/// An MX host to look up: (preference, exchange).
type Exchange = (u16, HostName);

// === impl MxResolver ===

impl MxResolver {
    /// Checks `settings` and builds the resolver (none with `static_only`). Sends no query;
    /// lookups later need a Tokio runtime.
    pub fn new(settings: DnsSettings) -> Result<Self, DnsConfigError> {
        settings::check_limits(&settings)?;
        let tables = StaticTables::parse(&settings)?;
        let dns = match settings.static_only {
            true => None,
            false => Some(DnsClient::new(settings.resolver, settings.timeout)?),
        };
        let validating = validating_resolver(&settings);
        if let Err(reason) = &validating {
            tracing::info!(%reason, "DANE is not available on this edge");
        }
        let inner = Inner { tables, smtp_port: settings.smtp_port, dns, validating };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The trusted validating resolver DANE asks, or why there is none (`dns.dnssec = off`,
    /// `static_only`, a resolver off loopback with `auto`).
    pub fn validating(&self) -> Result<&ValidatingStub, &str> {
        self.inner.validating.as_ref().map_err(String::as_str)
    }

    /// The port MX hosts are reached on, which names their TLSA records (`_25._tcp.HOST`).
    pub fn smtp_port(&self) -> u16 {
        self.inner.smtp_port
    }

    /// MX hosts by preference (ties shuffled, RFC 5321 §5.1), each with its A/AAAA addresses
    /// at `smtp_port` (or the static entry's port), IPv4 first.
    ///
    /// No MX record makes the domain itself the implicit MX (preference 0); a lone "." MX is
    /// [`RouteError::NullMx`]. MX hosts without addresses are skipped; when none remain the
    /// error is [`RouteError::Temporary`] if some lookup failed temporarily, else
    /// [`RouteError::NoRoute`].
    pub async fn resolve_domain(&self, domain: &str) -> Result<Vec<NextHop>, RouteError> {
        let Some(name) = HostName::parse(domain) else {
            return Err(RouteError::NoSuchDomain { domain: domain.to_owned() });
        };
        let exchanges = order_by_preference(self.inner.exchanges(&name).await?);
        let answers = Arc::clone(&self.inner).host_lookups(&exchanges).await;

        let mut hops = Vec::new();
        let mut failure = None;
        for ((preference, host), answer) in exchanges.into_iter().zip(answers) {
            match answer {
                Answer::Found(addresses) if !addresses.is_empty() => {
                    hops.push(NextHop { host: host.to_string(), preference, addresses })
                }
                Answer::Failed(reason) => {
                    debug!(%host, preference, %reason, "MX host lookup failed, skipped");
                    failure.get_or_insert(format!("{host}: {reason}"));
                }
                Answer::Found(_) | Answer::NoRecords | Answer::NoSuchName => {
                    debug!(%host, preference, "MX host has no address, skipped");
                }
            }
        }
        match (hops.is_empty(), failure) {
            (false, _) => Ok(hops),
            (true, Some(reason)) => Err(RouteError::Temporary { domain: name.to_string(), reason }),
            (true, None) => Err(RouteError::NoRoute { domain: name.to_string() }),
        }
    }

    /// A smart host (name or IP literal, as given) at `port`.
    ///
    /// An IP literal (`192.0.2.1`, `[192.0.2.1]`, `[IPv6:2001:db8::1]`) is used as is; a
    /// name goes through the static hosts table (entries with their own port keep it), then
    /// A/AAAA lookups.
    pub async fn resolve_host(&self, host: &str, port: u16) -> Result<NextHop, RouteError> {
        if let Some(ip) = ip_literal(host) {
            return Ok(NextHop { host: ip.to_string(), preference: 0, addresses: vec![SocketAddr::new(ip, port)] });
        }
        let Some(name) = HostName::parse(host) else {
            return Err(RouteError::NoSuchDomain { domain: host.to_owned() });
        };
        let domain = name.to_string();
        match self.inner.host_addresses(&name, port).await {
            Answer::Found(addresses) if !addresses.is_empty() => Ok(NextHop { host: domain, preference: 0, addresses }),
            Answer::Found(_) | Answer::NoRecords => Err(RouteError::NoRoute { domain }),
            Answer::NoSuchName => Err(RouteError::NoSuchDomain { domain }),
            Answer::Failed(reason) => Err(RouteError::Temporary { domain, reason }),
        }
    }
}

/// The TXT records of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtAnswer {
    /// The records, each one's strings joined.
    Found(Vec<String>),
    /// NXDOMAIN or no TXT records.
    Absent,
    /// No usable answer now.
    Failed(String),
}

impl MxResolver {
    /// The TXT records of `name` (no static table has any).
    pub async fn txt(&self, name: &str) -> TxtAnswer {
        let Some(host) = HostName::parse(name) else { return TxtAnswer::Failed(format!("{name}: not a DNS name")) };
        let Some(dns) = &self.inner.dns else { return TxtAnswer::Failed(NOT_IN_STATIC_TABLE.to_owned()) };
        match dns.txt(&host).await {
            Answer::Found(records) => TxtAnswer::Found(records),
            Answer::NoRecords | Answer::NoSuchName => TxtAnswer::Absent,
            Answer::Failed(reason) => TxtAnswer::Failed(reason),
        }
    }
}

// === impl Inner ===

impl Inner {
    /// The MX hosts of `domain`: `[dns.mx]`, else the domain itself when `[dns.hosts]`
    /// lists it, else DNS.
    async fn exchanges(&self, domain: &HostName) -> Result<Vec<Exchange>, RouteError> {
        if let Some(set) = self.tables.mx(domain) {
            return from_mx_set(domain, set.clone());
        }
        if self.tables.addresses(domain).is_some() {
            return Ok(vec![(IMPLICIT_MX_PREFERENCE, domain.clone())]);
        }
        let Some(dns) = &self.dns else {
            return Err(RouteError::Temporary { domain: domain.to_string(), reason: NOT_IN_STATIC_TABLE.to_owned() });
        };
        match dns.mx(domain).await {
            Answer::Found(set) => from_mx_set(domain, set),
            Answer::NoRecords => Ok(vec![(IMPLICIT_MX_PREFERENCE, domain.clone())]),
            Answer::NoSuchName => Err(RouteError::NoSuchDomain { domain: domain.to_string() }),
            Answer::Failed(reason) => Err(RouteError::Temporary { domain: domain.to_string(), reason }),
        }
    }

    /// Looks up all `exchanges` at once; the answers come back in the same order.
    async fn host_lookups(self: Arc<Self>, exchanges: &[Exchange]) -> Vec<Answer<Vec<SocketAddr>>> {
        let mut tasks = JoinSet::new();
        for (index, (_, host)) in exchanges.iter().enumerate() {
            let inner = Arc::clone(&self);
            let host = host.clone();
            let lookup = async move { (index, inner.host_addresses(&host, inner.smtp_port).await) };
            tasks.spawn(lookup.in_current_span());
        }
        let mut answers = vec![Answer::Failed(LOOKUP_ABORTED.to_owned()); exchanges.len()];
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, answer)) => {
                    if let Some(slot) = answers.get_mut(index) {
                        *slot = answer;
                    }
                }
                Err(error) => debug!(%error, "MX host lookup task ended early"),
            }
        }
        answers
    }

    /// The addresses of `host`: `[dns.hosts]` (entries without a port get `default_port`),
    /// else A/AAAA lookups at `default_port`.
    async fn host_addresses(&self, host: &HostName, default_port: u16) -> Answer<Vec<SocketAddr>> {
        if let Some(entries) = self.tables.addresses(host) {
            let addresses = entries.iter().map(|entry| entry.socket_addr(default_port));
            return Answer::Found(addresses.collect());
        }
        let Some(dns) = &self.dns else {
            return Answer::Failed(NOT_IN_STATIC_TABLE.to_owned());
        };
        dns.addresses(host).await.map(|ips| ips.into_iter().map(|ip| SocketAddr::new(ip, default_port)).collect())
    }
}

/// The resolver whose AD bit is believed under `dns.dnssec` (decision 0008).
fn validating_resolver(settings: &DnsSettings) -> Result<ValidatingStub, String> {
    if settings.static_only {
        return Err("dns.static_only is set: no DNS, so no DNSSEC".to_owned());
    }
    if settings.dnssec == DnssecMode::Off {
        return Err("dns.dnssec = \"off\"".to_owned());
    }
    let server = match settings.resolver {
        Some(server) => server,
        None => system_resolver()?,
    };
    // systemd-resolved's stub does not validate by default and older versions pass the
    // upstream AD bit through: believed only when named explicitly in dns.resolver.
    if settings.resolver.is_none() && server.ip() == std::net::IpAddr::from([127, 0, 0, 53]) {
        return Err(format!(
            "the system resolver {server} is systemd-resolved's stub, which may pass an unvalidated AD bit \
             through (set dns.resolver to a validating resolver, e.g. unbound on 127.0.0.1:53)"
        ));
    }
    if settings.dnssec == DnssecMode::Auto && !server.ip().is_loopback() {
        return Err(format!(
            "the resolver {server} is not on a loopback address, so its AD bit could be forged on the way \
             (run a validating resolver on this host, or set dns.dnssec = \"trust-resolver\")"
        ));
    }
    Ok(ValidatingStub::new(server, settings.timeout))
}

/// The first name server of /etc/resolv.conf.
fn system_resolver() -> Result<SocketAddr, String> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| format!("cannot read the system's resolver configuration: {e}"))?;
    let first = config.name_servers().first().ok_or("the system's resolver configuration lists no name server")?;
    Ok(SocketAddr::new(first.ip, 53))
}

fn from_mx_set(domain: &HostName, set: MxSet) -> Result<Vec<Exchange>, RouteError> {
    match set {
        MxSet::Null => Err(RouteError::NullMx { domain: domain.to_string() }),
        MxSet::Exchanges(exchanges) => Ok(exchanges),
    }
}

/// Sorts by preference, shuffling hosts of equal preference to spread the load (RFC 5321
/// §5.1), and keeps each host once, at its best preference.
fn order_by_preference(mut exchanges: Vec<Exchange>) -> Vec<Exchange> {
    exchanges.sort_by(|(p1, h1), (p2, h2)| (h1, p1).cmp(&(h2, p2)));
    exchanges.dedup_by(|later, earlier| later.1 == earlier.1);
    // A fresh RandomState has fresh keys: its hashes are a cheap shuffle (not for security).
    let random = RandomState::new();
    exchanges.sort_by_cached_key(|(preference, host)| (*preference, random.hash_one(host)));
    exchanges
}

/// An IP address written as a smart host: bare, `[ip]` or `[IPv6:ip]` (RFC 5321 §4.1.3).
fn ip_literal(host: &str) -> Option<IpAddr> {
    let host = host.trim();
    let inner = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .map(|inner| inner.strip_prefix("IPv6:").unwrap_or(inner));
    inner.unwrap_or(host).parse().ok()
}

const IMPLICIT_MX_PREFERENCE: u16 = 0;
const NOT_IN_STATIC_TABLE: &str = "not in the static routing table";
const LOOKUP_ABORTED: &str = "lookup did not finish";
