//! The admin gRPC API: mutual TLS with the organization's CA, one authenticated
//! [`Admin`] per call, and the single mapping of errors to `tonic::Status`.

mod admin;
mod convert;

use domainsec_model::Fingerprint;
use std::time::Duration;

use domainsec_model::{ObjectName, Role};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    Status,
    transport::{Certificate, Identity, Server, ServerTlsConfig},
};
use tracing::{error, info};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{authz::Admin, db, directory};
pub use admin::AdminService;

/// The admin API's TLS material, loaded from the state dir.
pub struct AdminTls {
    /// PEM of the server certificate.
    pub certificate_pem: String,
    /// PEM of its key.
    pub key_pem: String,
    /// PEM of the CA whose admin credentials are accepted.
    pub ca_certificate_pem: String,
}

/// Serves the admin API on `listener` until `shutdown` is cancelled.
pub async fn serve_admin(
    directory: directory::Directory,
    tls: AdminTls,
    health: crate::health::Health,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let tls_config = ServerTlsConfig::new()
        .identity(Identity::from_pem(&tls.certificate_pem, &tls.key_pem))
        .client_ca_root(Certificate::from_pem(&tls.ca_certificate_pem));
    let incoming = tokio_stream_incoming(listener);
    info!("admin API serving");
    Server::builder()
        .tls_config(tls_config)?
        .timeout(REQUEST_TIMEOUT)
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .tcp_nodelay(true)
        .trace_fn(|request| tracing::info_span!("admin", method = %request.uri().path()))
        .add_service(health.service())
        .add_service(
            proto::admin::admin_server::AdminServer::new(AdminService::new(directory))
                .max_decoding_message_size(proto::admin::MAX_ADMIN_REQUEST_BYTES),
        )
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

fn tokio_stream_incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    tokio_stream::wrappers::TcpListenerStream::new(listener)
}

/// Derives the caller from its client certificate: the certificate must be one
/// the controller issued and recorded, not revoked, with the role it was issued for.
pub async fn authenticate<T>(pool: &sqlx::PgPool, request: &tonic::Request<T>) -> Result<Admin, Status> {
    let certificates = request
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("no client certificate; pass an admin credential to dsctl"))?;
    let leaf = certificates
        .first()
        .ok_or_else(|| Status::unauthenticated("no client certificate; pass an admin credential to dsctl"))?;
    let fingerprint = Fingerprint::of(leaf.as_ref());
    let credential = db::admins::find(pool, fingerprint.as_str())
        .await
        .map_err(Status::from)?
        .ok_or_else(|| Status::unauthenticated("this credential is not in the organization's directory"))?;
    if credential.revoked_at.is_some() {
        return Err(Status::unauthenticated("this credential has been revoked"));
    }
    let role: Role = credential.role.parse().map_err(|_| Status::internal("stored credential role is invalid"))?;
    if certificate_role(leaf.as_ref()).as_deref() != Some(role.as_str()) {
        return Err(Status::unauthenticated("the role in this certificate does not match the directory"));
    }
    let edges = credential.edges.iter().filter_map(|e| ObjectName::parse(e).ok()).collect();
    Ok(Admin { name: credential.name, role, edges })
}

/// The OU of the certificate's subject, where the controller writes the role.
fn certificate_role(der: &[u8]) -> Option<String> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    let role = certificate.subject().iter_organizational_unit().next()?.as_str().ok()?.to_owned();
    Some(role)
}

impl From<directory::Error> for Status {
    fn from(error: directory::Error) -> Self {
        match error {
            directory::Error::Denied(denied) => Status::permission_denied(denied.to_string()),
            directory::Error::Store(store) => store.into(),
            directory::Error::EdgeUnavailable { .. } => {
                let mut status = Status::unavailable(error.to_string());
                status.metadata_mut().insert(
                    proto::admin::ERROR_KIND_METADATA,
                    tonic::metadata::MetadataValue::from_static(proto::admin::ERROR_KIND_EDGE_UNAVAILABLE),
                );
                status
            }
            directory::Error::EdgeRefused { .. } => Status::failed_precondition(error.to_string()),
            directory::Error::NoRandomness => internal(&error),
        }
    }
}

impl From<db::Error> for Status {
    fn from(error: db::Error) -> Self {
        if error.is_unreachable() {
            tracing::warn!(%error, "directory unreachable");
            return Status::unavailable(
                "directory unreachable: the controller cannot reach its database; nothing was changed, retry when it is back",
            );
        }
        match error {
            db::Error::Invalid(invalid) => Status::invalid_argument(invalid.to_string()),
            db::Error::NotFound { .. } | db::Error::VersionUnavailable(_) => Status::not_found(error.to_string()),
            db::Error::AlreadyExists { .. } => Status::already_exists(error.to_string()),
            db::Error::Subscription(_) | db::Error::NoEdgePort => Status::failed_precondition(error.to_string()),
            db::Error::NoOrganization | db::Error::OrganizationExists(_) => {
                Status::failed_precondition(error.to_string())
            }
            db::Error::Sqlx(_) | db::Error::Migrate(_) | db::Error::Corrupt { .. } | db::Error::Seal(_) => {
                internal(&error)
            }
        }
    }
}

/// Logs the details and tells the caller only that the controller failed.
fn internal(error: &dyn std::error::Error) -> Status {
    error!(error = %error, "directory error");
    Status::internal("the controller could not complete the call; its log has the details")
}

/// The cap on any call: each call's deadline is the client's `grpc-timeout` (dsctl sends
/// 30 s, or a wait's length plus a margin), never more than this, which leaves room for
/// the longest wait a call may ask for ([`proto::admin::MAX_WAIT_SECONDS`]).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(proto::admin::MAX_WAIT_SECONDS as u64 + 30);
const CONCURRENCY_PER_CONNECTION: usize = 32;
