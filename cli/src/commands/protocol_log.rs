//! `dsctl protocol-log --edge NAME`: Send or Receive protocol log records of an
//! edge (connectors with ProtocolLoggingLevel verbose), through the controller.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use proto::admin as pb;

use super::Context;
use crate::output::Format;

#[derive(Debug, Args)]
pub struct ProtocolLogArgs {
    /// The edge.
    #[arg(long)]
    edge: String,
    /// Which log.
    #[arg(long, value_enum, default_value = "receive")]
    log: Log,
    /// Only this connector (e.g. Inet).
    #[arg(long)]
    connector: Option<String>,
    /// Only this session id.
    #[arg(long)]
    session: Option<String>,
    /// Records since a time ago (e.g. 15m, 2h) or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// At most this many records (the newest), up to 5000.
    #[arg(long, default_value_t = 200)]
    limit: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Log {
    Receive,
    Send,
}

pub async fn run(context: &mut Context, args: ProtocolLogArgs) -> anyhow::Result<()> {
    let since_unix_seconds = match &args.since {
        None => 0,
        Some(text) => since(text)?,
    };
    let request = pb::GetProtocolLogRequest {
        edge: args.edge,
        log: match args.log {
            Log::Receive => "receive".into(),
            Log::Send => "send".into(),
        },
        connector: args.connector.unwrap_or_default(),
        session: args.session.unwrap_or_default(),
        since_unix_seconds,
        limit: args.limit,
    };
    let lines = context.client.get_protocol_log(request).await?.into_inner().lines;
    match context.format {
        Format::Json => println!("{}", serde_json::json!({ "fields": FIELDS, "records": lines })),
        Format::Table => {
            if lines.is_empty() {
                println!("no records (is the connector's protocol logging level verbose?)");
            } else {
                println!("#Fields: {}", FIELDS.join(","));
                for line in lines {
                    println!("{line}");
                }
            }
        }
    }
    Ok(())
}

const FIELDS: [&str; 9] = [
    "date-time",
    "connector-id",
    "session-id",
    "sequence-number",
    "local-endpoint",
    "remote-endpoint",
    "event",
    "data",
    "context",
];

/// `15m` (ago) or `2026-11-29T10:00:00Z`, as Unix seconds.
fn since(text: &str) -> anyhow::Result<i64> {
    let at = match humantime::parse_duration(text) {
        Ok(ago) => SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH),
        Err(_) => humantime::parse_rfc3339_weak(text).map_err(|_| {
            anyhow::anyhow!(
                "--since {text:?}: give a time ago (15m, 2h, 1d) or an RFC 3339 time (2026-11-29T10:00:00Z)"
            )
        })?,
    };
    Ok(i64::try_from(at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())).unwrap_or(0))
}
