//! `dsctl counters --edge NAME`: the paper's Domain Security counters of one edge,
//! by partner and by failure reason, with the relay's other figures, as of its
//! last heartbeat.

use std::collections::BTreeMap;

use clap::Args;
use proto::admin as pb;

use super::Context;
use crate::output::{self, Format};

#[derive(Debug, Args)]
pub struct CountersArgs {
    /// The edge.
    #[arg(long)]
    edge: String,
}

pub async fn run(context: &mut Context, args: CountersArgs) -> anyhow::Result<()> {
    let status = context.client.fleet_status(pb::FleetStatusRequest {}).await?.into_inner();
    let Some(edge) = status.edges.into_iter().find(|e| e.name == args.edge) else {
        anyhow::bail!("no edge {:?}; `dsctl edge list` shows the edges", args.edge);
    };
    let counters: BTreeMap<String, u64> = edge.counters.into_iter().collect();
    if context.format == Format::Json {
        println!(
            "{}",
            serde_json::json!({ "edge": edge.name, "last_heartbeat": edge.last_heartbeat, "counters": counters })
        );
        return Ok(());
    }
    if edge.last_heartbeat.is_empty() {
        println!("edge {} has not sent a heartbeat yet", edge.name);
        return Ok(());
    }
    let count = |name: &str| counters.get(name).copied().unwrap_or(0).to_string();
    println!("edge {} (heartbeat {})", edge.name, output::time(&edge.last_heartbeat));
    let paper = vec![
        vec!["Domain-Secured Messages Received".to_owned(), count("domain_secured.messages_received")],
        vec!["Domain-Secured Messages Sent".to_owned(), count("domain_secured.messages_sent")],
        vec!["Domain-Secured Outbound Session Failures".to_owned(), count("domain_secured.outbound_session_failures")],
        vec!["Domain Security inbound refusals".to_owned(), count("domain_secured.inbound_refusals")],
    ];
    print!("{}", output::table(&["COUNTER", "VALUE"], paper));
    let mut partners: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for (name, value) in &counters {
        for (index, prefix) in ["received.", "sent.", "outbound_failures.", "inbound_refusals."].iter().enumerate() {
            if let Some(domain) = name.strip_prefix("domain_secured.").and_then(|n| n.strip_prefix(prefix)) {
                partners.entry(domain.to_owned()).or_default()[index] = *value;
            }
        }
    }
    if !partners.is_empty() {
        println!();
        let rows = partners
            .into_iter()
            .map(|(domain, v)| vec![domain, v[0].to_string(), v[1].to_string(), v[2].to_string(), v[3].to_string()])
            .collect();
        print!("{}", output::table(&["PARTNER", "RECEIVED", "SENT", "OUTBOUND FAILURES", "INBOUND REFUSALS"], rows));
    }
    let reasons: Vec<Vec<String>> = counters
        .iter()
        .filter_map(|(name, value)| {
            name.strip_prefix("domain_secured.failure_reason.").map(|reason| vec![reason.to_owned(), value.to_string()])
        })
        .collect();
    if !reasons.is_empty() {
        println!();
        print!("{}", output::table(&["FAILURE REASON", "COUNT"], reasons));
    }
    println!();
    let relay: Vec<Vec<String>> = counters
        .iter()
        .filter(|(name, _)| name.starts_with("smtp.") || name.starts_with("queue."))
        .map(|(name, value)| vec![name.clone(), value.to_string()])
        .collect();
    print!("{}", output::table(&["RELAY", "VALUE"], relay));
    Ok(())
}
