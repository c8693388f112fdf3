//! The controller's integration tests: one binary, a fresh database per test
//! (`#[sqlx::test]`), the real admin API over real mutual TLS.
#![allow(clippy::unwrap_used)]

mod authentication;
mod bad_input;
mod bootstrap;
mod connectors;
mod history;
mod operations;
mod publish;
mod roles;
mod support;
mod transport_config;
