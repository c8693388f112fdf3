//! The DomainSec controller: keeps the organization's configuration in PostgreSQL
//! (the role Active Directory plays in the white paper) and serves the admin gRPC
//! API that `dsctl` speaks.
//!
//! # Layout
//! - [`config`]: the `serve` configuration (TOML file + flags).
//! - [`bootstrap`]: `init` and `admin-cert issue`.
//! - [`pki`]: the organization's internal CA (rcgen).
//! - [`state_dir`]: private keys on the controller's disk, never in the database.
//! - [`db`]: all SQL; each change one transaction with a version bump and an audit row.
//! - [`directory`]: the operations, authorised per [`authz`] role.
//! - [`grpc`]: the admin API over mutual TLS.

pub mod authz;
pub mod bootstrap;
pub mod config;
pub mod db;
pub mod directory;
pub mod fingerprint;
pub mod grpc;
pub mod pki;
pub mod state_dir;
#[cfg(feature = "testing")]
pub mod testing;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{config::Config, state_dir::StateDir};

/// Runs the controller on an already bound admin listener until `shutdown`.
pub async fn run(config: Config, admin_listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let pool = db::connect(&config.database_url, config.max_database_connections)
        .await
        .context("connect to the directory database")?;
    serve(pool, &config, admin_listener, shutdown).await
}

/// Serves with an existing, migrated pool (tests pass a per-test database here).
pub async fn serve(
    pool: sqlx::PgPool,
    config: &Config,
    admin_listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let state = StateDir::new(&config.state_dir);
    let tls = bootstrap::admin_api_tls(&pool, &state, &config.admin_hostnames)
        .await
        .context("load the admin API's TLS credentials")?;
    let (organization, version) = directory::Directory::new(pool.clone()).organization().await?;
    tracing::info!(%organization, config_version = version, admin_listen = %admin_listener.local_addr()?, "controller starting");
    grpc::serve_admin(directory::Directory::new(pool), tls, admin_listener, shutdown)
        .await
        .context("serve the admin API")?;
    tracing::info!("controller stopped");
    Ok(())
}
