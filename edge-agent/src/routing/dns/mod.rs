//! MX and address lookup with hickory-resolver, and a static overrides table.
//!
//! [`MxResolver::resolve_domain`] turns a recipient domain into the hosts to try, in order
//! (RFC 5321 §5.1): MX records by preference with ties shuffled, the domain itself when it
//! has no MX, and [`RouteError::NullMx`] for an RFC 7505 null MX.
//! [`MxResolver::resolve_host`] does the same for a smart host.
//!
//! Names listed in `[dns.mx]` or `[dns.hosts]` never reach DNS; with `static_only` nothing does.
//!
//! # Layout
//! - `settings`: [`DnsSettings`] and the parsed static tables.
//! - `resolver`: [`MxResolver`], the routing rules.
//! - `lookup`: queries through hickory and what their errors mean.
//! - `validated`: queries to a trusted validating resolver whose AD bit DANE believes.

mod lookup;
mod resolver;
mod settings;
mod validated;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

pub use resolver::{MxResolver, TxtAnswer};
pub use settings::{DnsConfigError, DnsSettings, DnssecMode, StaticMx};
pub use validated::{Security, ValidatedAnswer, ValidatingStub};

/// One host to try, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// The MX exchange, the domain (implicit MX) or the smart host: lower-case A-labels, no
    /// trailing dot, or the IP address of an IP literal. TLS name checks use it.
    pub host: String,
    /// The MX preference (0 for an implicit MX or a smart host).
    pub preference: u16,
    /// Where to connect, IPv4 first.
    pub addresses: Vec<SocketAddr>,
}

/// Why a domain or host has no next hop; each maps to an RFC 3463 status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// RFC 7505 null MX: the domain accepts no mail (permanent, 5.1.10).
    #[error("{domain} accepts no mail (null MX)")]
    NullMx {
        /// The recipient domain.
        domain: String,
    },
    /// NXDOMAIN, or a name that cannot exist (permanent, 5.1.2).
    #[error("{domain}: no such domain")]
    NoSuchDomain {
        /// The recipient domain or smart host.
        domain: String,
    },
    /// No MX and no address, or MX hosts without addresses (permanent, 5.4.4).
    #[error("{domain}: no mail exchanger with an address")]
    NoRoute {
        /// The recipient domain or smart host.
        domain: String,
    },
    /// Server failure, timeout, unreachable resolver, or a name missing from the static
    /// tables with `static_only` (temporary, 4.4.3).
    #[error("{domain}: lookup failed, try again later: {reason}")]
    Temporary {
        /// The recipient domain or smart host.
        domain: String,
        /// What failed.
        reason: String,
    },
}

// === impl RouteError ===

impl RouteError {
    /// Whether the message should bounce rather than wait in the queue.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Temporary { .. })
    }

    /// The RFC 3463 enhanced status code for the DSN and the SMTP reply.
    pub fn enhanced_status(&self) -> &'static str {
        match self {
            Self::NullMx { .. } => "5.1.10",
            Self::NoSuchDomain { .. } => "5.1.2",
            Self::NoRoute { .. } => "5.4.4",
            Self::Temporary { .. } => "4.4.3",
        }
    }
}
