//! Talking to the controller: mutual TLS with pinned certificates, subscription
//! and the EdgeSync stream.

pub mod operator;
pub mod subscribe;
pub mod sync;
pub mod tls;
