//! The DomainSec edge agent: subscribes to the organization's controller, keeps a
//! persisted copy of its configuration, and (with later issues) runs the SMTP
//! relay with Domain Security.
//!
//! # Layout
//! - [`store`]: the data directory (identity, trust, last good snapshot).
//! - [`identity`]: the edge's own key pair and self-signed certificate.
//! - [`control`]: TLS with pinned controller certificates, subscription, sync.
//! - [`apply`]: checking a snapshot before taking it.
//! - [`certificates`]: the certificate store and the key work done on the edge.

pub mod apply;
pub mod certificates;
pub mod control;
pub mod delivery;
pub mod identity;
pub mod protocol_log;
pub mod queue;
pub mod routing;
pub mod smtp;
pub mod store;
