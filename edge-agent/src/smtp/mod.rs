//! SMTP itself, pure: command parsing, replies, addresses, the TLS facts a
//! session records, and the credentials a connector presents. The servers and
//! clients that do I/O ([`crate::inbound`], [`crate::outbound`]) build on it.

pub mod address;
pub mod command;
pub mod credentials;
pub mod reply;
pub mod tls_info;
