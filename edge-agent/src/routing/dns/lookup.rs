//! Questions to DNS through hickory-resolver, and what the answers mean for mail routing.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use tracing::debug;

use super::settings::{DnsConfigError, HostName, MxSet};

/// What DNS said about one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answer<T> {
    /// Records of the asked type.
    Found(T),
    /// The name exists but has no records of the asked type (NODATA).
    NoRecords,
    /// The name does not exist (NXDOMAIN).
    NoSuchName,
    /// No usable answer (server failure, timeout, unreachable server): try again later.
    Failed(String),
}

// === impl Answer ===

impl<T> Answer<T> {
    /// Changes the found records, keeping any other answer.
    pub(super) fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        match self {
            Self::Found(records) => Answer::Found(f(records)),
            Self::NoRecords => Answer::NoRecords,
            Self::NoSuchName => Answer::NoSuchName,
            Self::Failed(reason) => Answer::Failed(reason),
        }
    }
}

/// A hickory resolver set up for mail routing: fully qualified queries only, no hosts file.
#[derive(Debug, Clone)]
pub(super) struct DnsClient {
    resolver: TokioResolver,
}

// === impl DnsClient ===

impl DnsClient {
    /// A client asking `server`, or the servers of /etc/resolv.conf when it is `None`.
    ///
    /// `timeout` bounds each try of a query; hickory retries a failed query once more
    /// (`attempts` counts retries, so 1 means two tries at most).
    pub(super) fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, DnsConfigError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(server) => Resolver::builder_with_config(single_server(server), provider),
            None => Resolver::builder(provider).map_err(|e| DnsConfigError::SystemConfig { reason: e.to_string() })?,
        };
        let options = builder.options_mut();
        options.timeout = timeout;
        options.attempts = RETRIES;
        // The static `[dns.hosts]` table is the override; /etc/hosts must not change mail routes.
        options.use_hosts_file = ResolveHosts::Never;
        let resolver = builder.build().map_err(|e| DnsConfigError::Resolver { reason: e.to_string() })?;
        Ok(Self { resolver })
    }

    /// The MX records of `domain`. A lone "." exchange is a null MX; a "." among others, or an
    /// exchange that is not a host name, is dropped.
    pub(super) async fn mx(&self, domain: &HostName) -> Answer<MxSet> {
        let lookup = match self.query(domain, RecordType::MX).await {
            Ok(lookup) => lookup,
            Err(miss) => return miss.into(),
        };
        let records: Vec<_> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                _ => None,
            })
            .collect();
        match records.as_slice() {
            [] => Answer::NoRecords,
            [(_, exchange)] if exchange.is_root() => Answer::Found(MxSet::Null),
            _ => Answer::Found(MxSet::Exchanges(
                records
                    .iter()
                    .filter_map(|(preference, exchange)| usable_exchange(domain, *preference, exchange))
                    .collect(),
            )),
        }
    }

    /// The A then AAAA addresses of `host`, asked for in parallel.
    ///
    /// Addresses of one family are enough even when the other query failed; with none, a
    /// failure of either query makes the whole answer a failure.
    pub(super) async fn addresses(&self, host: &HostName) -> Answer<Vec<IpAddr>> {
        let (v4, v6) = tokio::join!(self.query(host, RecordType::A), self.query(host, RecordType::AAAA));
        let mut addresses = Vec::new();
        let mut misses = Vec::new();
        for result in [v4, v6] {
            match result {
                Ok(lookup) => addresses.extend(lookup.answers().iter().filter_map(|record| match &record.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                    _ => None,
                })),
                Err(miss) => misses.push(miss),
            }
        }
        if !addresses.is_empty() {
            return Answer::Found(addresses);
        }
        combine_misses(misses)
    }

    /// The TXT records of `name`, each record's strings joined (RFC 7208 §3.3 style).
    pub(super) async fn txt(&self, name: &HostName) -> Answer<Vec<String>> {
        let lookup = match self.query(name, RecordType::TXT).await {
            Ok(lookup) => lookup,
            Err(miss) => return miss.into(),
        };
        let records: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => {
                    Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect::<String>())
                }
                _ => None,
            })
            .collect();
        if records.is_empty() { Answer::NoRecords } else { Answer::Found(records) }
    }

    /// One fully qualified query (no search list), with errors sorted by what they mean.
    async fn query(&self, name: &HostName, record_type: RecordType) -> Result<Lookup, Miss> {
        let fqdn =
            Name::from_ascii(format!("{name}.")).map_err(|e| Miss::Failed(format!("{name}: not a DNS name: {e}")))?;
        self.resolver.lookup(fqdn, record_type).await.map_err(|error| {
            debug!(%name, %record_type, %error, "DNS query gave no records");
            Miss::from_error(&error)
        })
    }
}

/// Why a query gave no records.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Miss {
    NoRecords,
    NoSuchName,
    Failed(String),
}

// === impl Miss ===

impl Miss {
    fn from_error(error: &NetError) -> Self {
        match error {
            NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. })) => match *response_code {
                ResponseCode::NXDomain => Self::NoSuchName,
                ResponseCode::NoError => Self::NoRecords,
                other => Self::Failed(format!("DNS error: {other}")),
            },
            other => Self::Failed(other.to_string()),
        }
    }
}

impl<T> From<Miss> for Answer<T> {
    fn from(miss: Miss) -> Self {
        match miss {
            Miss::NoRecords => Self::NoRecords,
            Miss::NoSuchName => Self::NoSuchName,
            Miss::Failed(reason) => Self::Failed(reason),
        }
    }
}

/// The answer for a host none of whose queries found an address: NXDOMAIN is definitive,
/// then a failure (the other family might exist), then NODATA.
fn combine_misses(misses: Vec<Miss>) -> Answer<Vec<IpAddr>> {
    let mut answer = Answer::NoRecords;
    for miss in misses {
        match miss {
            Miss::NoSuchName => return Answer::NoSuchName,
            Miss::Failed(reason) if answer == Answer::NoRecords => answer = Answer::Failed(reason),
            Miss::Failed(_) | Miss::NoRecords => {}
        }
    }
    answer
}

/// An MX exchange as a [`HostName`], or `None` (logged) for "." next to other records and
/// for names that are not host names.
fn usable_exchange(domain: &HostName, preference: u16, exchange: &Name) -> Option<(u16, HostName)> {
    let parsed = (!exchange.is_root()).then(|| HostName::parse(&exchange.to_ascii())).flatten();
    if parsed.is_none() {
        debug!(%domain, preference, %exchange, "ignoring unusable MX exchange");
    }
    parsed.map(|host| (preference, host))
}

fn single_server(server: SocketAddr) -> ResolverConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = server.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = server.port();
    ResolverConfig::from_name_servers(vec![NameServerConfig::new(server.ip(), true, vec![udp, tcp])])
}

const RETRIES: usize = 1;
