//! `domainsec-edge subscribe`: make the edge's key pair here, register its
//! certificate with the one-time secret, remember whom to trust.

use std::{path::Path, sync::Arc};

use domainsec_model::credentials::SubscriptionFile;
use proto::edge::{SubscribeRequest, edge_sync_client::EdgeSyncClient};
use tracing::info;

use super::tls::{self, PinnedControllers};
use crate::{
    identity::EdgeIdentity,
    store::{ControllerTrust, DataDir},
};

/// Subscribes the edge described by `file`, storing its identity in `dir`.
/// On any refusal the data dir is removed again, so nothing is half-registered.
pub async fn subscribe(file: &Path, dir: &DataDir) -> anyhow::Result<ControllerTrust> {
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("read subscription file {}: {e}", file.display()))?;
    let subscription: SubscriptionFile = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a DomainSec subscription file: {e}", file.display()))?;
    if subscription.endpoints.is_empty() || subscription.controller_sha256.is_empty() {
        anyhow::bail!("{} lists no controller endpoint or certificate", file.display());
    }
    let fresh = !dir.root().exists();
    dir.create()?;
    let result = register(&subscription, dir).await;
    if result.is_err() && fresh {
        let _ = std::fs::remove_dir_all(dir.root());
    } else if result.is_err() {
        let _ = std::fs::remove_file(dir.key());
        let _ = std::fs::remove_file(dir.certificate());
    }
    result
}

async fn register(subscription: &SubscriptionFile, dir: &DataDir) -> anyhow::Result<ControllerTrust> {
    let identity = EdgeIdentity::create(dir, &subscription.organization, &subscription.fqdn)?;
    let pinned = Arc::new(PinnedControllers::new(subscription.controller_sha256.iter().cloned()));
    let mut failures = Vec::new();
    for endpoint in &subscription.endpoints {
        let channel = match tls::connect(endpoint, &identity, pinned.clone(), true).await {
            Ok(channel) => channel,
            Err(error) => {
                failures.push(format!("{endpoint}: {error}"));
                continue;
            }
        };
        let request = SubscribeRequest { edge: subscription.edge.clone(), secret: subscription.secret.clone() };
        let response = match EdgeSyncClient::new(channel).subscribe(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::Unavailable => {
                failures.push(format!("{endpoint}: {}", status.message()));
                continue;
            }
            Err(status) => anyhow::bail!("the controller refused the subscription: {}", status.message()),
        };
        let mut controller_sha256: Vec<String> =
            response.controller_certificates.iter().filter_map(|pem| tls::pem_sha256(pem)).collect();
        if controller_sha256.is_empty() {
            controller_sha256 = subscription.controller_sha256.clone();
        }
        let trust = ControllerTrust {
            organization: response.organization,
            edge: response.edge,
            fqdn: response.fqdn,
            endpoints: subscription.endpoints.clone(),
            controller_sha256,
        };
        dir.store_trust(&trust)?;
        info!(edge = %trust.edge, controller = %endpoint, "subscribed");
        return Ok(trust);
    }
    anyhow::bail!("no controller answered ({}); is the controller's edge port reachable?", failures.join("; "))
}
