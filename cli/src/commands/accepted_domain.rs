//! `dsctl accepted-domain add|list|remove`.

use clap::Subcommand;
use proto::admin as pb;
use serde::Serialize;

use super::Context;
use crate::output::{self, Render};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept mail for a domain ("contoso.com", or "*.contoso.com" with its subdomains).
    Add {
        /// The domain, e.g. contoso.com or *.contoso.com.
        domain: String,
    },
    /// List accepted domains.
    List,
    /// Stop accepting mail for a domain.
    Remove {
        /// The domain as it was added.
        domain: String,
    },
}

#[derive(Serialize)]
struct AcceptedDomainView {
    domain: String,
    created_at: String,
}

impl Render for AcceptedDomainView {
    fn headers() -> &'static [&'static str] {
        &["DOMAIN", "ADDED"]
    }
    fn row(&self) -> Vec<String> {
        vec![self.domain.clone(), output::time(&self.created_at)]
    }
}

fn view(domain: pb::AcceptedDomain) -> AcceptedDomainView {
    AcceptedDomainView { domain: domain.domain, created_at: domain.created_at }
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Add { domain } => {
            let added = context.client.add_accepted_domain(pb::AddAcceptedDomainRequest { domain }).await?.into_inner();
            output::list(context.format, &[view(added)])
        }
        Command::List => {
            let domains = context
                .client
                .list_accepted_domains(pb::ListAcceptedDomainsRequest {})
                .await?
                .into_inner()
                .accepted_domains;
            output::list(context.format, &domains.into_iter().map(view).collect::<Vec<_>>())
        }
        Command::Remove { domain } => {
            let reply = context
                .client
                .remove_accepted_domain(pb::RemoveAcceptedDomainRequest { domain: domain.clone() })
                .await?
                .into_inner();
            output::done(context.format, &format!("removed accepted domain {domain}"), reply.config_version)
        }
    }
}
