//! Tests of DNS routing: settings, static tables, and the hickory path against a loopback
//! DNS server.

mod config;
mod dns_routes;
mod fake_dns;
mod static_routes;

use std::net::SocketAddr;

use super::{DnsSettings, NextHop, StaticMx};

fn static_mx(preference: u16, exchange: &str) -> StaticMx {
    StaticMx { preference, exchange: exchange.to_owned() }
}

fn hop(host: &str, preference: u16, addresses: &[&str]) -> NextHop {
    NextHop {
        host: host.to_owned(),
        preference,
        addresses: addresses.iter().map(|a| a.parse::<SocketAddr>().unwrap()).collect(),
    }
}

/// Settings with only static tables: nothing may reach DNS.
fn static_only() -> DnsSettings {
    DnsSettings { static_only: true, ..DnsSettings::default() }
}
