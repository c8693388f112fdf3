//! dsctl end to end: the real `dsctl` binary against an in-process controller on
//! `127.0.0.1:0` with a fresh database per test.
#![allow(clippy::unwrap_used)]

mod commands;
mod config_history;
mod publish;
