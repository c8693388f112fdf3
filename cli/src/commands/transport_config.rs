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
    /// HTTP proxy the edges fetch CRLs through (http://proxy:3128), or none.
    #[arg(long)]
    crl_proxy: Option<String>,
    /// Hosts that bypass the CRL proxy, ';' or ',' separated: names, *.suffix, <local> ('' clears).
    #[arg(long)]
    crl_proxy_bypass: Option<String>,
}

#[derive(Serialize)]
struct TransportConfigView {
    tls_send_domain_secure_list: Vec<String>,
    tls_receive_domain_secure_list: Vec<String>,
    crl_proxy: String,
    crl_proxy_bypass: Vec<String>,
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
                && args.remove_tls_receive_domain_secure.is_empty()
                && args.crl_proxy.is_none()
                && args.crl_proxy_bypass.is_none();
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
                crl_proxy: args.crl_proxy,
                crl_proxy_bypass: args.crl_proxy_bypass.map(|text| pb::StringList {
                    values: text
                        .split([';', ','])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                }),
            };
            context.client.set_transport_config(request).await?
        }
    }
    .into_inner();
    let view = TransportConfigView {
        tls_send_domain_secure_list: config.tls_send_domain_secure_list,
        tls_receive_domain_secure_list: config.tls_receive_domain_secure_list,
        crl_proxy: config.crl_proxy,
        crl_proxy_bypass: config.crl_proxy_bypass,
        config_version: config.config_version,
    };
    let fields = vec![
        ("TLSSendDomainSecureList", output::join(&view.tls_send_domain_secure_list)),
        ("TLSReceiveDomainSecureList", output::join(&view.tls_receive_domain_secure_list)),
        ("CRLProxy", if view.crl_proxy.is_empty() { "none (direct)".to_owned() } else { view.crl_proxy.clone() }),
        ("CRLProxyBypass", output::join(&view.crl_proxy_bypass)),
        ("ConfigVersion", view.config_version.to_string()),
    ];
    output::object(context.format, &view, fields)
}
