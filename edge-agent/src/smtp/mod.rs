//! The SMTP relay's protocol side: parsing and replies (pure), the inbound
//! server that receive connectors run, and the outbound client send connectors use.

pub mod address;
pub mod command;
pub mod credentials;
pub mod inbound;
pub mod outbound;
pub mod reply;
pub mod tls_info;
