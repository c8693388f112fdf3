//! The SMTP relay's protocol side: parsing and replies (pure), the inbound
//! server that receive connectors run, and the outbound client send connectors use.

pub mod address;
pub mod command;
pub mod reply;
