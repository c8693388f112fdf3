//! A controller for tests: bound on `127.0.0.1:0` before it is spawned (so tests
//! never sleep), initialised against the caller's database, cancelled on drop.
//! Enabled by the `testing` feature; used by this crate's and `dsctl`'s tests.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use domainsec_model::{Role, credentials::CredentialBundle};
use proto::admin::admin_client::AdminClient;
use sqlx::PgPool;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{
    bootstrap::{self, InitOptions, IssueOptions},
    config::Config,
    state_dir::StateDir,
};

/// A running controller with an initialised organization.
pub struct TestController {
    /// The admin API address.
    pub address: SocketAddr,
    /// The edge port address.
    pub edge_address: SocketAddr,
    /// The plain gRPC health listener (no client certificate).
    pub health_address: SocketAddr,
    /// The per-test directory (state dir, credential files), shared by replicas.
    pub dir: Arc<TempDir>,
    /// The test's database.
    pub pool: PgPool,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestController {
    /// Initialises organization "Contoso" in `pool`'s database and serves it.
    pub async fn start(pool: PgPool) -> Self {
        let keep = std::env::var_os("KEEP_TEST_DIRS").is_some();
        let dir = tempfile::Builder::new()
            .prefix("domainsec-test-")
            .disable_cleanup(keep)
            .tempdir()
            .expect("create a temp dir");
        if keep {
            eprintln!("test dir (kept): {}", dir.path().display());
        }
        let admin = bind("127.0.0.1:0").await;
        let address = admin.local_addr().expect("local address");
        let state = StateDir::new(dir.path().join("state"));
        bootstrap::init(
            &pool,
            &state,
            &InitOptions {
                organization: "Contoso".to_owned(),
                admin_name: "admin".to_owned(),
                controllers: vec![address.to_string()],
                out_admin: dir.path().join("admin.toml"),
                admin_hostnames: Vec::new(),
            },
        )
        .await
        .expect("init the organization");
        let edge = bind("127.0.0.1:0").await;
        Self::launch(pool, Arc::new(dir), admin, edge)
    }

    /// A second controller replica on the same database and state dir, with its own ports.
    pub async fn replica(&self) -> Self {
        Self::launch(self.pool.clone(), self.dir.clone(), bind("127.0.0.1:0").await, bind("127.0.0.1:0").await)
    }

    /// A second replica on the same state dir reaching the database through `pool`
    /// (e.g. directly, while this one goes through a proxy a test cuts).
    pub async fn replica_on(&self, pool: PgPool) -> Self {
        Self::launch(pool, self.dir.clone(), bind("127.0.0.1:0").await, bind("127.0.0.1:0").await)
    }

    /// Stops this controller and starts it again on the same ports (a restart).
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let admin = rebind(self.address).await;
        let edge = rebind(self.edge_address).await;
        Self::launch(self.pool.clone(), self.dir.clone(), admin, edge)
    }

    /// Stops this controller and waits until it has let go of its ports.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn launch(pool: PgPool, dir: Arc<TempDir>, admin: tokio::net::TcpListener, edge: tokio::net::TcpListener) -> Self {
        let address = admin.local_addr().expect("local address");
        let edge_address = edge.local_addr().expect("local address");
        let health = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the health listener");
        let health_address = health.local_addr().expect("local address");
        health.set_nonblocking(true).expect("non-blocking");
        let health = tokio::net::TcpListener::from_std(health).expect("health listener");
        let config = Config {
            database_url: String::new(),
            admin_listen: address,
            edge_listen: edge_address,
            edge_endpoints: vec![edge_address.to_string()],
            controller_id: format!("test@{edge_address}"),
            state_dir: dir.path().join("state"),
            admin_hostnames: Vec::new(),
            max_database_connections: 5,
        };
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let serve_pool = pool.clone();
        let task = tokio::spawn(async move {
            let listeners = crate::Listeners { admin, edge, metrics: None, health: Some(health), mta_sts: None };
            if let Err(error) = crate::serve(serve_pool, &config, listeners, token).await {
                eprintln!("test controller stopped: {error:#}");
            }
        });
        Self { address, edge_address, health_address, dir, pool, shutdown, task: Some(task) }
    }

    /// The org-admin credential that `init` wrote.
    pub fn org_admin_credentials(&self) -> PathBuf {
        self.dir.path().join("admin.toml")
    }

    /// Issues a credential with `role` (scoped to `edges` for server-admin).
    pub async fn issue(&self, role: Role, name: &str, edges: &[&str]) -> PathBuf {
        let out = self.dir.path().join(format!("{name}.toml"));
        bootstrap::issue_admin(
            &self.pool,
            &StateDir::new(self.dir.path().join("state")),
            &IssueOptions {
                name: name.to_owned(),
                role,
                edges: edges.iter().map(|e| (*e).to_owned()).collect(),
                days: 1,
                controllers: vec![self.address.to_string()],
                out: out.clone(),
            },
        )
        .await
        .expect("issue a credential");
        out
    }

    /// A gRPC client authenticated with the credential file.
    pub async fn client(&self, credentials: &Path) -> AdminClient<Channel> {
        let bundle = read_bundle(credentials);
        self.client_with(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&bundle.ca_certificate))
                .identity(Identity::from_pem(&bundle.certificate, &bundle.private_key))
                .domain_name(&bundle.server_name),
        )
        .await
    }

    /// A gRPC client with the given TLS settings (for refusal tests).
    pub async fn client_with(&self, tls: ClientTlsConfig) -> AdminClient<Channel> {
        let channel = Endpoint::from_shared(format!("https://{}", self.address))
            .expect("endpoint")
            .tls_config(tls)
            .expect("tls config")
            .connect_lazy();
        AdminClient::new(channel)
    }

    /// A client with the org-admin credential.
    pub async fn org_admin(&self) -> AdminClient<Channel> {
        self.client(&self.org_admin_credentials()).await
    }

    /// The organization's config version, read from the database.
    pub async fn config_version(&self) -> i64 {
        sqlx::query_scalar("SELECT config_version FROM organization")
            .fetch_one(&self.pool)
            .await
            .expect("read config version")
    }

    /// Number of audit rows.
    pub async fn audit_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&self.pool).await.expect("count audit rows")
    }
}

impl Drop for TestController {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn bind(address: &str) -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind(address).await.expect("bind a test port")
}

/// Binds a port a stopped controller just released (the kernel may need a moment).
async fn rebind(address: SocketAddr) -> tokio::net::TcpListener {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => return listener,
            Err(error) if tokio::time::Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("rebind {address}: {error}"),
        }
    }
}

/// Reads a credential bundle file.
pub fn read_bundle(path: &Path) -> CredentialBundle {
    let text = std::fs::read_to_string(path).expect("read credentials");
    toml::from_str(&text).expect("parse credentials")
}
