//! `dsctl fleet status`: one row per edge.

use std::collections::BTreeMap;

use clap::Subcommand;
use proto::admin as pb;
use serde::Serialize;

use super::Context;
use crate::output::{self, Render};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every edge: connection, configuration version ACKed vs current, last NACK, heartbeat, counters.
    Status,
}

#[derive(Serialize)]
struct EdgeStatusView {
    name: String,
    state: String,
    connected: bool,
    connected_since: String,
    controller: String,
    version_acked: u64,
    current_version: u64,
    nack_version: u64,
    nack_reason: String,
    last_heartbeat: String,
    queue_length: u64,
    counters: BTreeMap<String, u64>,
    certificate_not_after: String,
    certificate_expiring: bool,
}

impl Render for EdgeStatusView {
    fn headers() -> &'static [&'static str] {
        &[
            "EDGE",
            "STATE",
            "CONNECTED",
            "CONTROLLER",
            "VERSION",
            "LAST NACK",
            "HEARTBEAT",
            "QUEUE",
            "DOMAIN SECURED (IN/OUT/FAILED)",
            "SMTP CERT EXPIRES",
        ]
    }
    fn row(&self) -> Vec<String> {
        let connected =
            if self.connected { format!("since {}", output::time(&self.connected_since)) } else { "no".into() };
        let version = match (self.version_acked, self.version_acked == self.current_version) {
            (0, _) => format!("- / {}", self.current_version),
            (acked, true) => format!("{acked} (current)"),
            (acked, false) => format!("{acked} / {}", self.current_version),
        };
        let nack = if self.nack_reason.is_empty() {
            "-".into()
        } else {
            format!("v{}: {}", self.nack_version, self.nack_reason)
        };
        let count = |name: &str| self.counters.get(name).copied().unwrap_or(0);
        let secured = if self.counters.keys().any(|k| k.starts_with("domain_secured.")) {
            format!(
                "{}/{}/{}",
                count("domain_secured.messages_received"),
                count("domain_secured.messages_sent"),
                count("domain_secured.outbound_session_failures")
            )
        } else {
            "-".to_owned()
        };
        vec![
            self.name.clone(),
            self.state.clone(),
            connected,
            if self.controller.is_empty() { "-".into() } else { self.controller.clone() },
            version,
            nack,
            if self.last_heartbeat.is_empty() { "-".into() } else { output::time(&self.last_heartbeat) },
            self.queue_length.to_string(),
            secured,
            match (self.certificate_not_after.is_empty(), self.certificate_expiring) {
                (true, _) => "-".to_owned(),
                (false, true) => format!("{} (within 30 days!)", output::time(&self.certificate_not_after)),
                (false, false) => output::time(&self.certificate_not_after),
            },
        ]
    }
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Status => {
            let status = context.client.fleet_status(pb::FleetStatusRequest {}).await?.into_inner();
            let views: Vec<EdgeStatusView> = status
                .edges
                .into_iter()
                .map(|e| EdgeStatusView {
                    name: e.name,
                    state: e.state,
                    connected: e.connected,
                    connected_since: e.connected_since,
                    controller: e.controller,
                    version_acked: e.version_acked,
                    current_version: status.current_version,
                    nack_version: e.nack_version,
                    nack_reason: e.nack_reason,
                    last_heartbeat: e.last_heartbeat,
                    queue_length: e.queue_length,
                    counters: e.counters.into_iter().collect(),
                    certificate_not_after: e.certificate_not_after,
                    certificate_expiring: e.certificate_expiring,
                })
                .collect();
            output::list(context.format, &views)
        }
    }
}
