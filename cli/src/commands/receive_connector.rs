//! `dsctl receive-connector new|set|get|list|remove` (New-/Set-/Get-/Remove-ReceiveConnector).

use clap::{ArgAction, Args, Subcommand};
use proto::admin as pb;
use serde::Serialize;

use super::{Context, list_value};
use crate::{
    output::{self, Render},
    words::{self, AuthMechanism, LoggingLevel, PermissionGroup},
};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a receive connector on an edge.
    New {
        /// The new connector's name, unique on its edge, e.g. Inet.
        name: String,
        /// The edge it belongs to.
        #[arg(long)]
        edge: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Change a receive connector; flags left out keep their value.
    Set {
        /// The connector to change.
        name: String,
        /// The edge it belongs to.
        #[arg(long)]
        edge: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Show one receive connector.
    Get {
        /// The connector's name.
        name: String,
        /// The edge it belongs to.
        #[arg(long)]
        edge: String,
    },
    /// List receive connectors, of one edge or of all.
    List {
        /// Only this edge's connectors.
        #[arg(long)]
        edge: Option<String>,
    },
    /// Remove a receive connector.
    Remove {
        /// The connector's name.
        name: String,
        /// The edge it belongs to.
        #[arg(long)]
        edge: String,
    },
}

#[derive(Debug, Args)]
pub struct Settings {
    /// Addresses to listen on: ip:port (comma-separated), e.g. 0.0.0.0:25.
    #[arg(long, value_delimiter = ',')]
    bindings: Option<Vec<String>>,
    /// Remote addresses served: CIDR or address (comma-separated; '' means all).
    #[arg(long, value_delimiter = ',', num_args = 1)]
    remote_ip_ranges: Option<Vec<String>>,
    /// Banner/EHLO name ('' means the edge's FQDN).
    #[arg(long)]
    fqdn: Option<String>,
    /// How senders authenticate (comma-separated) [new: tls].
    #[arg(long = "auth-mechanism", value_enum, value_delimiter = ',', ignore_case = true)]
    auth_mechanisms: Vec<AuthMechanism>,
    /// Require mutual TLS from domains on TLSReceiveDomainSecureList.
    #[arg(long, action = ArgAction::Set, value_name = "true|false")]
    domain_secure_enabled: Option<bool>,
    /// Who may submit mail (comma-separated) [new: anonymous-users,partners].
    #[arg(long, value_enum, value_delimiter = ',', ignore_case = true)]
    permission_groups: Vec<PermissionGroup>,
    /// Protocol logging.
    #[arg(long, value_enum, ignore_case = true)]
    protocol_logging_level: Option<LoggingLevel>,
    /// Largest message accepted, e.g. 10MB (default 10MB).
    #[arg(long, value_parser = words::parse_size)]
    max_message_size: Option<u64>,
}

#[derive(Serialize)]
struct ReceiveConnectorView {
    edge: String,
    name: String,
    bindings: Vec<String>,
    remote_ip_ranges: Vec<String>,
    fqdn: String,
    auth_mechanisms: Vec<String>,
    domain_secure_enabled: bool,
    permission_groups: Vec<String>,
    protocol_logging_level: String,
    max_message_size: u64,
    updated_at: String,
    config_version: u64,
}

impl Render for ReceiveConnectorView {
    fn headers() -> &'static [&'static str] {
        &["EDGE", "NAME", "BINDINGS", "AUTH", "DOMAIN SECURE", "PERMISSION GROUPS", "LOGGING", "MAX SIZE"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.edge.clone(),
            self.name.clone(),
            output::join(&self.bindings),
            output::join(&self.auth_mechanisms),
            self.domain_secure_enabled.to_string(),
            output::join(&self.permission_groups),
            self.protocol_logging_level.clone(),
            output::size(self.max_message_size),
        ]
    }
}

impl ReceiveConnectorView {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Edge", self.edge.clone()),
            ("Name", self.name.clone()),
            ("Bindings", output::join(&self.bindings)),
            (
                "RemoteIPRanges",
                if self.remote_ip_ranges.is_empty() { "(all)".to_owned() } else { self.remote_ip_ranges.join(",") },
            ),
            ("Fqdn", if self.fqdn.is_empty() { "(edge FQDN)".to_owned() } else { self.fqdn.clone() }),
            ("AuthMechanism", output::join(&self.auth_mechanisms)),
            ("DomainSecureEnabled", self.domain_secure_enabled.to_string()),
            ("PermissionGroups", output::join(&self.permission_groups)),
            ("ProtocolLoggingLevel", self.protocol_logging_level.clone()),
            ("MaxMessageSize", output::size(self.max_message_size)),
            ("UpdatedAt", self.updated_at.clone()),
            ("ConfigVersion", self.config_version.to_string()),
        ]
    }
}

fn view(connector: pb::ReceiveConnector) -> ReceiveConnectorView {
    let spec = connector.spec.unwrap_or_default();
    ReceiveConnectorView {
        edge: spec.edge,
        name: spec.name,
        bindings: spec.bindings,
        remote_ip_ranges: spec.remote_ip_ranges,
        fqdn: spec.fqdn,
        auth_mechanisms: spec.auth_mechanisms.iter().map(|m| words::auth_mechanism_word(*m)).collect(),
        domain_secure_enabled: spec.domain_secure_enabled,
        permission_groups: spec.permission_groups.iter().map(|g| words::permission_group_word(*g)).collect(),
        protocol_logging_level: words::logging_level_word(spec.protocol_logging_level),
        max_message_size: spec.max_message_size,
        updated_at: connector.updated_at,
        config_version: connector.config_version,
    }
}

fn enums<T: Copy + Into<E>, E: Into<i32>>(values: &[T]) -> Vec<i32> {
    values.iter().map(|v| (*v).into().into()).collect()
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    let connector = match command {
        Command::New { name, edge, settings } => {
            let spec = pb::ReceiveConnectorSpec {
                edge,
                name,
                bindings: settings.bindings.unwrap_or_default(),
                remote_ip_ranges: settings.remote_ip_ranges.map(list_value).unwrap_or_default(),
                fqdn: settings.fqdn.unwrap_or_default(),
                auth_mechanisms: enums::<_, pb::AuthMechanism>(&settings.auth_mechanisms),
                domain_secure_enabled: settings.domain_secure_enabled.unwrap_or(false),
                permission_groups: enums::<_, pb::PermissionGroup>(&settings.permission_groups),
                protocol_logging_level: settings
                    .protocol_logging_level
                    .map_or(pb::ProtocolLoggingLevel::None, Into::into) as i32,
                max_message_size: settings.max_message_size.unwrap_or(0),
            };
            context.client.create_receive_connector(spec).await?.into_inner()
        }
        Command::Set { name, edge, settings } => {
            let request = pb::UpdateReceiveConnectorRequest {
                edge,
                name,
                bindings: settings.bindings.map(|values| pb::StringList { values }),
                remote_ip_ranges: settings.remote_ip_ranges.map(|values| pb::StringList { values: list_value(values) }),
                fqdn: settings.fqdn,
                auth_mechanisms: enums::<_, pb::AuthMechanism>(&settings.auth_mechanisms),
                domain_secure_enabled: settings.domain_secure_enabled,
                permission_groups: enums::<_, pb::PermissionGroup>(&settings.permission_groups),
                protocol_logging_level: settings
                    .protocol_logging_level
                    .map(|level| pb::ProtocolLoggingLevel::from(level) as i32),
                max_message_size: settings.max_message_size,
            };
            context.client.update_receive_connector(request).await?.into_inner()
        }
        Command::Get { name, edge } => {
            context.client.get_receive_connector(pb::GetReceiveConnectorRequest { edge, name }).await?.into_inner()
        }
        Command::List { edge } => {
            let connectors = context
                .client
                .list_receive_connectors(pb::ListReceiveConnectorsRequest { edge: edge.unwrap_or_default() })
                .await?
                .into_inner()
                .receive_connectors;
            return output::list(context.format, &connectors.into_iter().map(view).collect::<Vec<_>>());
        }
        Command::Remove { name, edge } => {
            let reply = context
                .client
                .remove_receive_connector(pb::RemoveReceiveConnectorRequest { edge: edge.clone(), name: name.clone() })
                .await?
                .into_inner();
            return output::done(
                context.format,
                &format!("removed receive connector {edge}/{name}"),
                reply.config_version,
            );
        }
    };
    let view = view(connector);
    output::object(context.format, &view, view.fields())
}
