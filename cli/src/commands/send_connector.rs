//! `dsctl send-connector new|set|get|list|remove` (New-/Set-/Get-/Remove-SendConnector).

use clap::{ArgAction, Args, Subcommand};
use proto::admin as pb;
use serde::Serialize;

use super::Context;
use crate::{
    output::{self, Render},
    words::{self, LoggingLevel, Switch},
};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a send connector.
    New {
        /// The new connector's name, e.g. Internet.
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Change a send connector; flags left out keep their value.
    Set {
        /// The connector to change.
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Show one send connector.
    Get {
        /// The connector's name.
        name: String,
    },
    /// List send connectors.
    List,
    /// Remove a send connector.
    Remove {
        /// The connector's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct Settings {
    /// Recipient domains: "*", "woodgrovebank.com", "*.woodgrovebank.com" (comma-separated).
    #[arg(long, value_delimiter = ',')]
    address_spaces: Option<Vec<String>>,
    /// Route by DNS MX lookup (the default for new connectors).
    #[arg(long, conflicts_with = "smart_hosts")]
    dns_routing: bool,
    /// Route through these hosts, in order: host[:port] (comma-separated).
    #[arg(long, value_delimiter = ',')]
    smart_hosts: Option<Vec<String>>,
    /// EHLO name ('' means the edge's own FQDN).
    #[arg(long)]
    fqdn: Option<String>,
    /// Require mutual TLS to domains on TLSSendDomainSecureList.
    #[arg(long, action = ArgAction::Set, value_name = "true|false")]
    domain_secure_enabled: Option<bool>,
    /// DANE (RFC 7672) for domains with DNSSEC-signed MX and TLSA records, below Domain
    /// Security (DNS routing only; default enabled).
    #[arg(long, value_enum)]
    dane: Option<Switch>,
    /// MTA-STS (RFC 8461) for domains that publish a policy, below DANE (DNS routing only;
    /// default enabled).
    #[arg(long, value_enum)]
    mta_sts: Option<Switch>,
    /// Protocol logging.
    #[arg(long, value_enum)]
    protocol_logging_level: Option<LoggingLevel>,
    /// Edges that send through this connector (comma-separated).
    #[arg(long, value_delimiter = ',')]
    source_edges: Option<Vec<String>>,
    /// Largest message sent, e.g. 10MB (default 10MB).
    #[arg(long, value_parser = words::parse_size)]
    max_message_size: Option<u64>,
}

#[derive(Serialize)]
struct SendConnectorView {
    name: String,
    address_spaces: Vec<String>,
    routing: String,
    smart_hosts: Vec<String>,
    fqdn: String,
    domain_secure_enabled: bool,
    dane: &'static str,
    mta_sts: &'static str,
    protocol_logging_level: String,
    source_edges: Vec<String>,
    max_message_size: u64,
    updated_at: String,
    config_version: u64,
}

impl Render for SendConnectorView {
    fn headers() -> &'static [&'static str] {
        &[
            "NAME",
            "ADDRESS SPACES",
            "ROUTING",
            "DOMAIN SECURE",
            "DANE",
            "MTA-STS",
            "LOGGING",
            "SOURCE EDGES",
            "MAX SIZE",
        ]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            output::join(&self.address_spaces),
            self.routing_text(),
            self.domain_secure_enabled.to_string(),
            self.dane.to_owned(),
            self.mta_sts.to_owned(),
            self.protocol_logging_level.clone(),
            output::join(&self.source_edges),
            output::size(self.max_message_size),
        ]
    }
}

impl SendConnectorView {
    fn routing_text(&self) -> String {
        if self.smart_hosts.is_empty() {
            "dns".to_owned()
        } else {
            format!("smart hosts {}", self.smart_hosts.join(","))
        }
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Name", self.name.clone()),
            ("AddressSpaces", output::join(&self.address_spaces)),
            ("Routing", self.routing_text()),
            ("Fqdn", if self.fqdn.is_empty() { "(edge FQDN)".to_owned() } else { self.fqdn.clone() }),
            ("DomainSecureEnabled", self.domain_secure_enabled.to_string()),
            ("Dane", self.dane.to_owned()),
            ("MtaSts", self.mta_sts.to_owned()),
            ("ProtocolLoggingLevel", self.protocol_logging_level.clone()),
            ("SourceEdges", output::join(&self.source_edges)),
            ("MaxMessageSize", output::size(self.max_message_size)),
            ("UpdatedAt", self.updated_at.clone()),
            ("ConfigVersion", self.config_version.to_string()),
        ]
    }
}

fn view(connector: pb::SendConnector) -> SendConnectorView {
    let spec = connector.spec.unwrap_or_default();
    SendConnectorView {
        routing: if spec.smart_hosts.is_empty() { "dns" } else { "smart-hosts" }.to_owned(),
        name: spec.name,
        address_spaces: spec.address_spaces,
        smart_hosts: spec.smart_hosts,
        fqdn: spec.fqdn,
        domain_secure_enabled: spec.domain_secure_enabled,
        dane: Switch::word(!spec.dane_disabled),
        mta_sts: Switch::word(!spec.mta_sts_disabled),
        protocol_logging_level: words::logging_level_word(spec.protocol_logging_level),
        source_edges: spec.source_edges,
        max_message_size: spec.max_message_size,
        updated_at: connector.updated_at,
        config_version: connector.config_version,
    }
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    let connector = match command {
        Command::New { name, settings } => {
            let spec = pb::SendConnectorSpec {
                name,
                address_spaces: settings.address_spaces.unwrap_or_default(),
                smart_hosts: settings.smart_hosts.unwrap_or_default(),
                fqdn: settings.fqdn.unwrap_or_default(),
                domain_secure_enabled: settings.domain_secure_enabled.unwrap_or(false),
                protocol_logging_level: settings
                    .protocol_logging_level
                    .map_or(pb::ProtocolLoggingLevel::None, Into::into) as i32,
                source_edges: settings.source_edges.unwrap_or_default(),
                max_message_size: settings.max_message_size.unwrap_or(0),
                dane_disabled: settings.dane.is_some_and(|s| !s.is_on()),
                mta_sts_disabled: settings.mta_sts.is_some_and(|s| !s.is_on()),
            };
            context.client.create_send_connector(spec).await?.into_inner()
        }
        Command::Set { name, settings } => {
            let request = pb::UpdateSendConnectorRequest {
                name,
                address_spaces: settings.address_spaces.map(|values| pb::StringList { values }),
                dns_routing: settings.dns_routing,
                smart_hosts: settings.smart_hosts.map(|values| pb::StringList { values }),
                fqdn: settings.fqdn,
                domain_secure_enabled: settings.domain_secure_enabled,
                protocol_logging_level: settings
                    .protocol_logging_level
                    .map(|level| pb::ProtocolLoggingLevel::from(level) as i32),
                source_edges: settings.source_edges.map(|values| pb::StringList { values }),
                max_message_size: settings.max_message_size,
                dane_enabled: settings.dane.map(Switch::is_on),
                mta_sts_enabled: settings.mta_sts.map(Switch::is_on),
            };
            context.client.update_send_connector(request).await?.into_inner()
        }
        Command::Get { name } => {
            context.client.get_send_connector(pb::GetSendConnectorRequest { name }).await?.into_inner()
        }
        Command::List => {
            let connectors = context
                .client
                .list_send_connectors(pb::ListSendConnectorsRequest {})
                .await?
                .into_inner()
                .send_connectors;
            return output::list(context.format, &connectors.into_iter().map(view).collect::<Vec<_>>());
        }
        Command::Remove { name } => {
            let reply = context
                .client
                .remove_send_connector(pb::RemoveSendConnectorRequest { name: name.clone() })
                .await?
                .into_inner();
            return output::done(context.format, &format!("removed send connector {name}"), reply.config_version);
        }
    };
    let view = view(connector);
    output::object(context.format, &view, view.fields())
}
