//! A test edge and waiting helpers.

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use controller::testing::TestController;
use domainsec_model::credentials::SubscriptionFile;
use edge::{
    apply::EdgeConfig,
    control::sync::{EdgeAgent, SyncSettings},
    store::DataDir,
};
use proto::admin::{self as pb, admin_client::AdminClient};
use tempfile::TempDir;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// An edge agent running in this process.
pub struct TestEdge {
    pub dir: TempDir,
    pub config: watch::Receiver<Option<Arc<EdgeConfig>>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Writes a subscription file for `name` (recording the edge) and returns its path.
pub async fn subscription_file(admin: &mut AdminClient<Channel>, dir: &std::path::Path, name: &str) -> PathBuf {
    let subscription = admin
        .new_subscription(pb::NewSubscriptionRequest {
            name: name.to_owned(),
            fqdn: format!("{name}.contoso.com"),
            expires_in_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let file = SubscriptionFile {
        organization: subscription.organization,
        edge: subscription.edge,
        fqdn: subscription.fqdn,
        endpoints: subscription.endpoints,
        controller_sha256: subscription.controller_sha256,
        secret: subscription.secret,
        expires_at: subscription.expires_at,
    };
    let path = dir.join(format!("{name}.subscription"));
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    path
}

impl TestEdge {
    /// Subscribes `name` through `controller` and starts it.
    pub async fn subscribe(controller: &TestController, name: &str) -> Self {
        let mut admin = controller.org_admin().await;
        let file = subscription_file(&mut admin, controller.dir.path(), name).await;
        let dir = tempfile::tempdir().unwrap();
        edge::control::subscribe::subscribe(&file, &DataDir::new(dir.path().join("data"))).await.unwrap();
        Self::start(dir)
    }

    /// Starts an agent on an existing data dir.
    pub fn start(dir: TempDir) -> Self {
        let settings =
            SyncSettings { heartbeat_interval: Duration::from_millis(200), max_backoff: Duration::from_millis(500) };
        let agent = EdgeAgent::load(DataDir::new(dir.path().join("data")), settings).unwrap();
        let config = agent.config();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(agent.run(shutdown.clone()));
        Self { dir, config, shutdown, task }
    }

    /// The version being served (0 for none).
    pub fn version(&self) -> u64 {
        self.config.borrow().as_ref().map_or(0, |c| c.version)
    }

    /// Waits until the edge serves `version` or newer.
    pub async fn wait_for_version(&mut self, version: u64) -> Arc<EdgeConfig> {
        let wait = self.config.wait_for(|c| c.as_ref().is_some_and(|c| c.version >= version));
        let config = tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("edge did not reach version {version} within {DEADLINE:?}"))
            .unwrap();
        config.clone().unwrap()
    }

    /// Stops the agent, keeping its data dir.
    pub async fn stop(self) -> TempDir {
        self.shutdown.cancel();
        let _ = self.task.await;
        self.dir
    }
}

/// The organization's current config version.
pub async fn current_version(admin: &mut AdminClient<Channel>) -> u64 {
    admin.who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner().config_version
}

/// Polls `check` until it returns `Some`, failing after the deadline.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One edge's row in fleet status.
pub async fn fleet_row(admin: &mut AdminClient<Channel>, name: &str) -> Option<pb::EdgeStatus> {
    admin.fleet_status(pb::FleetStatusRequest {}).await.unwrap().into_inner().edges.into_iter().find(|e| e.name == name)
}

/// How long a condition may take before the test fails. Generous: 74 tests share two
/// cores with debug-build RSA key generation, and a deadline costs nothing when the
/// condition comes true early (one run of the full suite took over 10 s to deliver).
pub const DEADLINE: Duration = Duration::from_secs(30);
