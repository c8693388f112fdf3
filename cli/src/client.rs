//! Connecting to the controller with the admin credential bundle.

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};
use proto::admin::admin_client::AdminClient;
use serde::Deserialize;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The credential bundle written by `domainsec-controller init` / `admin-cert issue`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialBundle {
    controllers: Vec<String>,
    server_name: String,
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    role: String,
    ca_certificate: String,
    certificate: String,
    private_key: String,
}

/// Loads the bundle and connects to the first controller that answers.
pub async fn connect(credentials: &Path) -> anyhow::Result<AdminClient<Channel>> {
    let text = std::fs::read_to_string(credentials).with_context(|| {
        format!(
            "read credentials {}: pass --credentials FILE or set DSCTL_CREDENTIALS to the file \
             `domainsec-controller init --out-admin` wrote",
            credentials.display()
        )
    })?;
    let bundle: CredentialBundle = toml::from_str(&text)
        .with_context(|| format!("credentials {} are not a DomainSec credential bundle", credentials.display()))?;
    if bundle.controllers.is_empty() {
        bail!("credentials {} list no controller address", credentials.display());
    }
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&bundle.ca_certificate))
        .identity(Identity::from_pem(&bundle.certificate, &bundle.private_key))
        .domain_name(&bundle.server_name);
    let mut failures = Vec::new();
    for address in &bundle.controllers {
        let endpoint = Endpoint::from_shared(format!("https://{address}"))
            .with_context(|| format!("controller address {address:?} in the credentials is not host:port"))?
            .tls_config(tls.clone())?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        match endpoint.connect().await {
            Ok(channel) => return Ok(AdminClient::new(channel)),
            Err(error) => failures.push(format!("{address}: {}", error_chain(&error))),
        }
    }
    bail!("cannot reach a controller ({}); is `domainsec-controller serve` running there?", failures.join("; "))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
