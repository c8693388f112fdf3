//! `dsctl transport-config get|set` (Get-/Set-TransportConfig).

use clap::{Args, Subcommand};
use proto::admin as pb;
use serde::Serialize;

use super::{Context, list_value};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the secure-domain lists.
    Get,
    /// Change the secure-domain lists. A list given replaces the whole value, as with
    /// Set-TransportConfig; --add-*/--remove-* change single entries.
    Set(SetArgs),
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// Replace TLSSendDomainSecureList (comma-separated; '' clears it).
    #[arg(long, value_delimiter = ',', num_args = 1)]
    tls_send_domain_secure_list: Option<Vec<String>>,
    /// Add one domain to TLSSendDomainSecureList (repeatable).
    #[arg(long, value_delimiter = ',')]
    add_tls_send_domain_secure: Vec<String>,
    /// Remove one domain from TLSSendDomainSecureList (repeatable).
    #[arg(long, value_delimiter = ',')]
    remove_tls_send_domain_secure: Vec<String>,
    /// Replace TLSReceiveDomainSecureList (comma-separated; '' clears it).
    #[arg(long, value_delimiter = ',', num_args = 1)]
    tls_receive_domain_secure_list: Option<Vec<String>>,
    /// Add one domain to TLSReceiveDomainSecureList (repeatable).
    #[arg(long, value_delimiter = ',')]
    add_tls_receive_domain_secure: Vec<String>,
    /// Remove one domain from TLSReceiveDomainSecureList (repeatable).
    #[arg(long, value_delimiter = ',')]
    remove_tls_receive_domain_secure: Vec<String>,
}

#[derive(Serialize)]
struct TransportConfigView {
    tls_send_domain_secure_list: Vec<String>,
    tls_receive_domain_secure_list: Vec<String>,
    config_version: u64,
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    let config = match command {
        Command::Get => context.client.get_transport_config(pb::GetTransportConfigRequest {}).await?,
        Command::Set(args) => {
            let nothing = args.tls_send_domain_secure_list.is_none()
                && args.tls_receive_domain_secure_list.is_none()
                && args.add_tls_send_domain_secure.is_empty()
                && args.remove_tls_send_domain_secure.is_empty()
                && args.add_tls_receive_domain_secure.is_empty()
                && args.remove_tls_receive_domain_secure.is_empty();
            if nothing {
                anyhow::bail!(
                    "nothing to set; give --tls-send-domain-secure-list, --add-tls-send-domain-secure, … (see --help)"
                );
            }
            let request = pb::SetTransportConfigRequest {
                tls_send_domain_secure_list: args
                    .tls_send_domain_secure_list
                    .map(|values| pb::StringList { values: list_value(values) }),
                add_tls_send_domain_secure: args.add_tls_send_domain_secure,
                remove_tls_send_domain_secure: args.remove_tls_send_domain_secure,
                tls_receive_domain_secure_list: args
                    .tls_receive_domain_secure_list
                    .map(|values| pb::StringList { values: list_value(values) }),
                add_tls_receive_domain_secure: args.add_tls_receive_domain_secure,
                remove_tls_receive_domain_secure: args.remove_tls_receive_domain_secure,
            };
            context.client.set_transport_config(request).await?
        }
    }
    .into_inner();
    let view = TransportConfigView {
        tls_send_domain_secure_list: config.tls_send_domain_secure_list,
        tls_receive_domain_secure_list: config.tls_receive_domain_secure_list,
        config_version: config.config_version,
    };
    let fields = vec![
        ("TLSSendDomainSecureList", output::join(&view.tls_send_domain_secure_list)),
        ("TLSReceiveDomainSecureList", output::join(&view.tls_receive_domain_secure_list)),
        ("ConfigVersion", view.config_version.to_string()),
    ];
    output::object(context.format, &view, fields)
}
