//! `dsctl trusted-root add|list|remove`: the paper's direct root trust for private
//! root CAs, and cross-certificates; pushed to edges with the snapshot.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use proto::admin as pb;
use serde::Serialize;

use super::Context;
use crate::output::{self, Render};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trust a CA certificate (PEM or DER) on every edge, or on the named ones.
    Add {
        /// The CA certificate: PEM or DER.
        #[arg(long)]
        path: PathBuf,
        /// Only these edges (comma-separated).
        #[arg(long, value_delimiter = ',')]
        edge: Vec<String>,
    },
    /// List trusted roots.
    List,
    /// Stop trusting a root.
    Remove {
        /// Its SHA-256 (dsctl trusted-root list).
        sha256: String,
    },
}

#[derive(Serialize)]
struct RootView {
    sha256: String,
    subject: String,
    edges: Vec<String>,
    added_by: String,
    added_at: String,
}

impl Render for RootView {
    fn headers() -> &'static [&'static str] {
        &["SHA-256", "SUBJECT", "EDGES", "ADDED BY", "ADDED"]
    }
    fn row(&self) -> Vec<String> {
        let edges = if self.edges.is_empty() { "(all)".to_owned() } else { self.edges.join(",") };
        vec![self.sha256.clone(), self.subject.clone(), edges, self.added_by.clone(), output::time(&self.added_at)]
    }
}

fn view(root: pb::TrustedRoot) -> RootView {
    RootView {
        sha256: root.sha256,
        subject: root.subject,
        edges: root.edges,
        added_by: root.added_by,
        added_at: root.added_at,
    }
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Add { path, edge } => {
            let data = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
            let root =
                context.client.add_trusted_root(pb::AddTrustedRootRequest { data, edges: edge }).await?.into_inner();
            let version = root.config_version;
            output::list(context.format, &[view(root)])?;
            if context.format == crate::output::Format::Table {
                println!("(config version {version}; edges receive it with their next snapshot)");
            }
            Ok(())
        }
        Command::List => {
            let roots = context.client.list_trusted_roots(pb::ListTrustedRootsRequest {}).await?.into_inner().roots;
            output::list(context.format, &roots.into_iter().map(view).collect::<Vec<_>>())
        }
        Command::Remove { sha256 } => {
            let reply = context
                .client
                .remove_trusted_root(pb::RemoveTrustedRootRequest { sha256: sha256.clone() })
                .await?
                .into_inner();
            output::done(context.format, &format!("removed trusted root {sha256}"), reply.config_version)
        }
    }
}
