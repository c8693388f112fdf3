//! The controller's gRPC health (`grpc.health.v1.Health`): one reporter whose status
//! both the admin port (mutual TLS) and the optional plain health listener
//! (`--health-listen`, no client certificate, for `grpc_health_probe`, load balancers
//! and Kubernetes `grpc` probes) serve.
//!
//! `SERVING` while the directory database answers and its schema is this build's;
//! `NOT_SERVING` when it does not (checked every [`CHECK_INTERVAL`]) and, first of all,
//! once a stop begins, so a balancer stops sending work before the ports close.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::{
    ServingStatus,
    pb::health_server::HealthServer,
    server::{HealthReporter, HealthService},
};

use crate::db;

/// The admin API's name in health checks (`grpc_health_probe -service domainsec.admin.v1.Admin`).
pub const ADMIN_SERVICE: &str =
    <proto::admin::admin_server::AdminServer<crate::grpc::AdminService> as tonic::server::NamedService>::NAME;

/// How often the database is checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The shared status and what serves it.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    /// Set by [`Health::stop`]; held while the status changes, so a database check
    /// that finishes during a stop cannot report `SERVING` after it.
    stopped: std::sync::Arc<tokio::sync::Mutex<bool>>,
}

impl Health {
    /// Checks the database once (the status is right from the first call), then
    /// follows it every [`CHECK_INTERVAL`] until `stopping`.
    pub async fn start(pool: sqlx::PgPool, stopping: CancellationToken) -> Self {
        let health = Self { reporter: HealthReporter::new(), stopped: Default::default() };
        let ready = db::readiness(pool);
        let first = health.check(&ready).await;
        health.set(first).await;
        let follower = health.clone();
        tokio::spawn(async move { follower.follow(ready, first, stopping).await });
        health
    }

    /// Reports `NOT_SERVING` for good: the first step of a stop.
    pub async fn stop(&self) {
        let mut stopped = self.stopped.lock().await;
        *stopped = true;
        self.set(ServingStatus::NotServing).await;
        tracing::info!("health: NOT_SERVING (stopping)");
    }

    /// The `grpc.health.v1.Health` service over this status.
    pub fn service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService::from_health_reporter(self.reporter.clone()))
    }

    /// Serves only the health service, in plain HTTP/2, on `listener` until `stopped`.
    pub async fn serve_plain(self, listener: TcpListener, stopped: CancellationToken) {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let served = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(self.service())
            .serve_with_incoming_shutdown(incoming, stopped.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the health listener stopped");
        }
    }

    async fn follow(self, ready: domainsec_daemon::http::Ready, first: ServingStatus, stopping: CancellationToken) {
        let mut last = first;
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(CHECK_INTERVAL) => {}
            }
            let status = self.check(&ready).await;
            if status != last {
                let stopped = self.stopped.lock().await;
                if *stopped {
                    return;
                }
                self.set(status).await;
                last = status;
            }
        }
    }

    async fn check(&self, ready: &domainsec_daemon::http::Ready) -> ServingStatus {
        match ready().await {
            Ok(()) => ServingStatus::Serving,
            Err(missing) => {
                tracing::warn!(%missing, "health: NOT_SERVING");
                ServingStatus::NotServing
            }
        }
    }

    async fn set(&self, status: ServingStatus) {
        for service in ["", ADMIN_SERVICE] {
            self.reporter.set_service_status(service, status).await;
        }
    }
}
