//! Connecting to the controller with the admin credential bundle.

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};
use proto::admin::admin_client::AdminClient;
use serde::Deserialize;
use tonic::{
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

/// The admin client every command uses: each call carries a deadline the controller
/// enforces too (`grpc-timeout`).
pub type Client = AdminClient<InterceptedService<Channel, Deadline>>;

/// Gives a call without its own deadline [`CALL_DEADLINE`]; a call that waits on
/// purpose (`edge sync --timeout`) sets a longer one with `Request::set_timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Deadline;

impl Interceptor for Deadline {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if !request.metadata().contains_key("grpc-timeout") {
            request.set_timeout(CALL_DEADLINE);
        }
        Ok(request)
    }
}

/// A request that may take `wait` on the server (which waits that long at most and
/// then answers), with room for the answer to arrive.
pub fn waiting<T>(message: T, wait: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(wait + ANSWER_MARGIN);
    request
}

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
pub async fn connect(credentials: &Path) -> anyhow::Result<Client> {
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
            .timeout(MAX_WAIT + ANSWER_MARGIN);
        match endpoint.connect().await {
            Ok(channel) => {
                return Ok(AdminClient::with_interceptor(channel, Deadline)
                    .max_decoding_message_size(proto::admin::MAX_ADMIN_REQUEST_BYTES)
                    .max_encoding_message_size(proto::admin::MAX_ADMIN_REQUEST_BYTES));
            }
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
/// An ordinary call's deadline (the controller's own cap is longer).
const CALL_DEADLINE: Duration = Duration::from_secs(30);
/// The longest a command may ask the controller to wait (`edge sync --timeout`); the
/// controller refuses more (`proto::admin::MAX_WAIT_SECONDS`).
pub const MAX_WAIT: Duration = Duration::from_secs(proto::admin::MAX_WAIT_SECONDS as u64);
/// Time for a waiting call's answer to arrive after the wait.
const ANSWER_MARGIN: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn deadline_of(request: tonic::Request<()>) -> String {
        let request = Deadline.call(request).unwrap();
        request.metadata().get("grpc-timeout").unwrap().to_str().unwrap().to_owned()
    }

    #[test]
    fn every_call_carries_a_deadline_and_a_wait_keeps_its_own() {
        assert_eq!(deadline_of(tonic::Request::new(())), "30000000u");
        let wait = waiting((), Duration::from_secs(45));
        assert_eq!(deadline_of(wait), "55000000u", "45 s wait + 10 s for the answer");
    }
}
