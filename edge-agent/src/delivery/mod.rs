//! Final delivery and reports: the local maildir and delivery status notifications.

pub mod dsn;
pub mod maildir;
