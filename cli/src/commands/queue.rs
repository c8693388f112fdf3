//! `dsctl queue list|retry|remove --edge NAME`: an edge's relay queue
//! (Get-Queue, Retry-Queue, Remove-Message without NDR), through the controller.

use std::time::{Duration, UNIX_EPOCH};

use clap::Subcommand;
use proto::{admin as pb, edge::QueuedMessage};
use serde::Serialize;

use super::Context;
use crate::output::{self, Format, Render};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Messages waiting on the edge, oldest first.
    List {
        /// The edge whose queue this is.
        #[arg(long)]
        edge: String,
    },
    /// Try a message again now (its destination's backoff is cleared).
    Retry {
        /// The edge whose queue this is.
        #[arg(long)]
        edge: String,
        /// Queue id (dsctl queue list).
        id: String,
    },
    /// Delete a message without delivering it and without a DSN to its sender.
    Remove {
        /// The edge whose queue this is.
        #[arg(long)]
        edge: String,
        /// Queue id (dsctl queue list).
        id: String,
    },
}

#[derive(Serialize)]
struct MessageView {
    id: String,
    sender: String,
    pending: Vec<String>,
    size: u64,
    arrival: String,
    attempts: u32,
    next_attempt_in_seconds: u64,
    last_error: String,
}

impl Render for MessageView {
    fn headers() -> &'static [&'static str] {
        &["ID", "SENDER", "PENDING", "SIZE", "ARRIVED", "ATTEMPTS", "NEXT TRY", "LAST ERROR"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            if self.sender.is_empty() { "<>".to_owned() } else { self.sender.clone() },
            output::join(&self.pending),
            output::size(self.size),
            output::time(&self.arrival),
            self.attempts.to_string(),
            if self.next_attempt_in_seconds == 0 {
                "now".to_owned()
            } else {
                format!("in {}s", self.next_attempt_in_seconds)
            },
            self.last_error.clone(),
        ]
    }
}

fn view(message: QueuedMessage) -> MessageView {
    let arrival = UNIX_EPOCH + Duration::from_secs(u64::try_from(message.arrival_unix_seconds).unwrap_or(0));
    MessageView {
        id: message.id,
        sender: message.sender,
        pending: message.pending,
        size: message.size,
        arrival: humantime::format_rfc3339_seconds(arrival).to_string(),
        attempts: message.attempts,
        next_attempt_in_seconds: message.next_attempt_in_seconds,
        last_error: message.last_error,
    }
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::List { edge } => {
            let messages = context.client.list_queue(pb::ListQueueRequest { edge: edge.clone() }).await?.into_inner();
            let views: Vec<MessageView> = messages.messages.into_iter().map(view).collect();
            if views.is_empty() && context.format == Format::Table {
                println!("the queue of edge {edge} is empty");
                return Ok(());
            }
            output::list(context.format, &views)
        }
        Command::Retry { edge, id } => {
            let request = pb::QueuedMessageRequest { edge: edge.clone(), message_id: id.clone() };
            context.client.retry_queued_message(request).await?;
            confirm(context.format, &format!("message {id} on edge {edge} is due for delivery now"))
        }
        Command::Remove { edge, id } => {
            let request = pb::QueuedMessageRequest { edge: edge.clone(), message_id: id.clone() };
            context.client.remove_queued_message(request).await?;
            confirm(context.format, &format!("message {id} removed from edge {edge} (no DSN sent)"))
        }
    }
}

fn confirm(format: Format, message: &str) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::json!({ "result": message })),
        Format::Table => println!("{message}"),
    }
    Ok(())
}
