//! The SMTP relay on loopback: inbound sessions, delivery, the queue, recovery.

mod delivery;
mod dns_lab;
mod domain_security;
mod drain;
mod explain;
mod inbound;
mod operations;
mod partner_test;
mod pki;
mod published_policies;
mod recovery;
mod support;
