//! `dsctl edge add|list|remove`.

use clap::Subcommand;
use proto::admin as pb;
use serde::Serialize;

use super::Context;
use crate::{
    exit::Incomplete,
    output::{self, Render},
};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record an edge so its connectors can be configured before it subscribes.
    Add {
        /// The edge's name in the directory, e.g. mail1.
        name: String,
        /// The edge's internet FQDN (default certificate CN and EHLO name), e.g. mail1.contoso.com.
        #[arg(long)]
        fqdn: String,
    },
    /// List edges.
    List,
    /// Record the edge (if new) and write a one-time subscription file for it (New-EdgeSubscription).
    NewSubscription {
        /// The edge's name in the directory, e.g. mail1.
        name: String,
        /// The edge's internet FQDN; needed when the edge is new.
        #[arg(long)]
        fqdn: Option<String>,
        /// How long the file can be used, e.g. 24h, 30m.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        expires: std::time::Duration,
        /// Where to write the file (mode 0600: it holds a secret).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Push a fresh snapshot now and wait for the ACKs (Start-EdgeSynchronization).
    Sync {
        /// The edges to sync.
        names: Vec<String>,
        /// Every edge.
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// How long the controller waits for the answers, e.g. 10s (at most 5m); the
        /// table then shows who ACKed, NACKed or did not answer.
        #[arg(long, default_value = "10s", value_parser = crate::words::parse_wait)]
        timeout: std::time::Duration,
    },
    /// Report whether each edge runs the current configuration (Test-EdgeSynchronization).
    TestSync {
        /// Only these edges.
        names: Vec<String>,
    },
    /// Remove an edge with its receive connectors.
    Remove {
        /// The edge's name.
        name: String,
    },
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
        Command::NewSubscription { name, fqdn, expires, out } => {
            new_subscription(context, name, fqdn, expires, &out).await
        }
        Command::Sync { names, all, timeout } => sync(context, names, all, timeout).await,
        Command::TestSync { names } => test_sync(context, names).await,
        Command::Remove { name } => {
            let reply = context.client.remove_edge(pb::RemoveEdgeRequest { name: name.clone() }).await?.into_inner();
            output::done(context.format, &format!("removed edge {name}"), reply.config_version)
        }
    }
}

async fn new_subscription(
    context: &mut Context,
    name: String,
    fqdn: Option<String>,
    expires: std::time::Duration,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    if out.exists() {
        anyhow::bail!("{} already exists; choose another --out file", out.display());
    }
    let subscription = context
        .client
        .new_subscription(pb::NewSubscriptionRequest {
            name,
            fqdn: fqdn.unwrap_or_default(),
            expires_in_seconds: expires.as_secs(),
        })
        .await?
        .into_inner();
    let file = domainsec_model::credentials::SubscriptionFile {
        organization: subscription.organization,
        edge: subscription.edge,
        fqdn: subscription.fqdn,
        endpoints: subscription.endpoints,
        controller_sha256: subscription.controller_sha256,
        secret: subscription.secret,
        expires_at: subscription.expires_at,
    };
    let text = format!(
        "# DomainSec subscription for edge {:?}. One use; expires {}.\n# On the edge: domainsec-edge subscribe --file {} --data-dir DIR\n{}",
        file.edge,
        file.expires_at,
        out.display(),
        toml::to_string(&file)?
    );
    write_private(out, text.as_bytes())?;
    #[derive(serde::Serialize)]
    struct View<'a> {
        edge: &'a str,
        fqdn: &'a str,
        file: String,
        expires_at: &'a str,
        endpoints: &'a [String],
    }
    let view = View {
        edge: &file.edge,
        fqdn: &file.fqdn,
        file: out.display().to_string(),
        expires_at: &file.expires_at,
        endpoints: &file.endpoints,
    };
    let fields = vec![
        ("Edge", file.edge.clone()),
        ("Fqdn", file.fqdn.clone()),
        ("File", out.display().to_string()),
        ("Expires", file.expires_at.clone()),
        ("Controllers", file.endpoints.join(",")),
        ("Next", format!("on the edge: domainsec-edge subscribe --file {} --data-dir DIR", out.display())),
    ];
    output::object(context.format, &view, fields)
}

fn write_private(path: &std::path::Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("create {}: {e}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

#[derive(Serialize)]
struct SyncView {
    edge: String,
    outcome: String,
    version_acked: u64,
    reason: String,
}

impl Render for SyncView {
    fn headers() -> &'static [&'static str] {
        &["EDGE", "RESULT", "VERSION", "REASON"]
    }
    fn row(&self) -> Vec<String> {
        let version = if self.version_acked == 0 { "-".to_owned() } else { self.version_acked.to_string() };
        vec![
            self.edge.clone(),
            self.outcome.clone(),
            version,
            if self.reason.is_empty() { "-".into() } else { self.reason.clone() },
        ]
    }
}

async fn sync(
    context: &mut Context,
    names: Vec<String>,
    all: bool,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    if names.is_empty() && !all {
        anyhow::bail!("name the edges to sync, or pass --all");
    }
    let timeout_seconds = u32::try_from(timeout.as_secs().max(1)).unwrap_or(u32::MAX);
    if context.format == crate::output::Format::Table {
        eprintln!("pushing configuration and waiting up to {}s for the edges to answer…", timeout_seconds);
    }
    let request = crate::client::waiting(pb::SyncEdgesRequest { names, all, timeout_seconds }, timeout);
    let call = context.client.sync_edges(request);
    let response = if context.format == crate::output::Format::Table {
        crate::output::with_progress("waiting for the edges' answers", timeout, call).await?
    } else {
        call.await?
    }
    .into_inner();
    let views: Vec<SyncView> = response
        .results
        .into_iter()
        .map(|r| SyncView { edge: r.edge, outcome: r.outcome, version_acked: r.version_acked, reason: r.reason })
        .collect();
    output::list(context.format, &views)?;
    let refused: Vec<&str> = views.iter().filter(|v| v.outcome == "nacked").map(|v| v.edge.as_str()).collect();
    if !refused.is_empty() {
        return Err(Incomplete::NotInSync { count: refused.len(), edges: refused.join(", ") }.into());
    }
    let silent: Vec<&str> = views.iter().filter(|v| v.outcome != "acked").map(|v| v.edge.as_str()).collect();
    if !silent.is_empty() {
        let version = response.version;
        return Err(Incomplete::NoAck { count: silent.len(), edges: silent.join(", "), version }.into());
    }
    Ok(())
}

#[derive(Serialize)]
struct TestView {
    edge: String,
    in_sync: bool,
    version_acked: u64,
    differing_sections: Vec<String>,
    detail: String,
}

impl Render for TestView {
    fn headers() -> &'static [&'static str] {
        &["EDGE", "IN SYNC", "VERSION", "DIFFERS", "DETAIL"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.edge.clone(),
            if self.in_sync { "yes" } else { "NO" }.to_owned(),
            self.version_acked.to_string(),
            output::join(&self.differing_sections),
            self.detail.clone(),
        ]
    }
}

async fn test_sync(context: &mut Context, names: Vec<String>) -> anyhow::Result<()> {
    let response = context.client.test_edge_sync(pb::TestEdgeSyncRequest { names }).await?.into_inner();
    let views: Vec<TestView> = response
        .edges
        .into_iter()
        .map(|t| TestView {
            edge: t.edge,
            in_sync: t.in_sync,
            version_acked: t.version_acked,
            differing_sections: t.differing_sections,
            detail: t.detail,
        })
        .collect();
    if context.format == crate::output::Format::Table {
        println!("current configuration version: {}", response.current_version);
    }
    output::list(context.format, &views)?;
    let behind: Vec<&str> = views.iter().filter(|v| !v.in_sync).map(|v| v.edge.as_str()).collect();
    if !behind.is_empty() {
        return Err(crate::exit::Incomplete::NotInSync { count: behind.len(), edges: behind.join(", ") }.into());
    }
    Ok(())
}
