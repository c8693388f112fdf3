//! `dsctl edge add|list|remove`.

use clap::Subcommand;
use proto::admin as pb;
use serde::Serialize;

use super::Context;
use crate::output::{self, Render};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record an edge so its connectors can be configured before it subscribes.
    Add {
        name: String,
        /// The edge's internet FQDN (default certificate CN and EHLO name), e.g. mail1.contoso.com.
        #[arg(long)]
        fqdn: String,
    },
    /// List edges.
    List,
    /// Remove an edge with its receive connectors.
    Remove { name: String },
}

#[derive(Serialize)]
struct EdgeView {
    name: String,
    fqdn: String,
    state: String,
    created_at: String,
}

impl Render for EdgeView {
    fn headers() -> &'static [&'static str] {
        &["NAME", "FQDN", "STATE", "CREATED"]
    }
    fn row(&self) -> Vec<String> {
        vec![self.name.clone(), self.fqdn.clone(), self.state.clone(), output::time(&self.created_at)]
    }
}

fn view(edge: pb::Edge) -> EdgeView {
    EdgeView { name: edge.name, fqdn: edge.fqdn, state: edge.state, created_at: edge.created_at }
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Add { name, fqdn } => {
            let edge = context.client.create_edge(pb::CreateEdgeRequest { name, fqdn }).await?.into_inner();
            output::list(context.format, &[view(edge)])
        }
        Command::List => {
            let edges = context.client.list_edges(pb::ListEdgesRequest {}).await?.into_inner().edges;
            output::list(context.format, &edges.into_iter().map(view).collect::<Vec<_>>())
        }
        Command::Remove { name } => {
            let reply = context.client.remove_edge(pb::RemoveEdgeRequest { name: name.clone() }).await?.into_inner();
            output::done(context.format, &format!("removed edge {name}"), reply.config_version)
        }
    }
}
