//! The SMTP relay on loopback: inbound sessions, delivery, the queue, recovery.

mod delivery;
mod inbound;
mod operations;
mod recovery;
mod support;
