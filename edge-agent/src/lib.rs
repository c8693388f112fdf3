//! The DomainSec edge agent: subscribes to the organization's controller, keeps a
//! persisted copy of its configuration, and runs the SMTP relay.
//!
//! # Layout
//! - [`store`]: the data directory (identity, trust, last good snapshot).
//! - [`identity`]: the edge's own key pair and self-signed certificate.
//! - [`control`]: TLS with pinned controller certificates, subscription, sync.
//! - [`apply`]: checking a snapshot before taking it.
//! - [`certificates`]: the certificate store and the key work done on the edge.
//! - [`config`]: the edge's local settings (`edge.toml`).
//! - [`relay`]: the SMTP relay, built from [`smtp`] (protocol, inbound server,
//!   outbound client), [`queue`] (spool, scheduler, delivery), [`routing`]
//!   (send connector choice, MX lookup), [`delivery`] (maildir, DSNs) and
//!   [`protocol_log`]; [`metrics`] counts what it does.

pub mod apply;
pub mod certificates;
pub mod config;
pub mod control;
pub mod delivery;
pub mod domain_security;
pub mod identity;
pub mod metrics;
pub mod protocol_log;
pub mod queue;
pub mod relay;
pub mod routing;
pub mod smtp;
pub mod store;
