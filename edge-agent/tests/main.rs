//! EdgeSync end to end: a real controller (in process, on 127.0.0.1:0, fresh
//! database per test) and real edge agents over mutual TLS with direct trust.
#![allow(clippy::unwrap_used)]

mod certificates;
mod refusals;
mod relay;
mod support;
mod sync;
