//! All SQL: the organization's directory in PostgreSQL.
//!
//! Reads return model types, parsed again from the stored text so a bad row is
//! reported instead of trusted. Writes go through [`change::Change`], which makes
//! each change one transaction that bumps the config version and writes an audit row.

pub mod accepted_domains;
pub mod admins;
pub mod audit;
pub mod certificates;
pub mod change;
pub mod config_versions;
pub mod edges;
pub mod organization;
pub mod partners;
pub mod publication;
pub mod receive_connectors;
pub mod replicas;
pub mod send_connectors;
pub mod subscriptions;
pub mod sync_state;
pub mod transport;
pub mod trusted_roots;

use std::time::Duration;

use domainsec_model::InvalidField;
use sqlx::{PgPool, migrate::Migrator, postgres::PgPoolOptions};

// === impl Error ===

impl Error {
    /// The database could not be reached (connection refused, reset or timed out, no
    /// free connection in time, the server shutting down): the call may succeed later,
    /// and nothing was written — each change is one transaction.
    pub fn is_unreachable(&self) -> bool {
        let Self::Sqlx(error) = self else { return false };
        match error {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
            sqlx::Error::Database(database) => database.code().is_some_and(|code| {
                // Class 08 (connection exception), 57P01–57P03 (shutting down, cannot connect now).
                code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        }
    }
}

/// The directory's schema, from `migrations/` at the workspace root.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Errors of the directory store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed or could not be reached.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// No row with that key.
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    /// A row with that key exists already.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    /// `init` has not been run against this database.
    #[error("this database holds no organization; run `domainsec-controller init` first")]
    NoOrganization,
    /// `init` ran twice.
    #[error("this database already holds organization {0:?}; nothing was changed")]
    OrganizationExists(String),
    /// A value refers to something that does not exist, or breaks a cross-row rule.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// A subscription that cannot be redeemed (reused, expired, wrong secret).
    #[error(transparent)]
    Subscription(#[from] SubscriptionRefusal),
    /// This controller does not serve the edge port (edge operations need it).
    #[error("this controller does not serve the edge port")]
    NoEdgePort,
    /// A PFX could not be sealed for storage.
    #[error("cannot seal the PFX for storage: {0}")]
    Seal(String),
    /// A config version whose document the directory does not have.
    #[error(transparent)]
    VersionUnavailable(#[from] config_versions::Unavailable),
    /// A stored value no longer parses (edited by hand, or a bug).
    #[error("stored {what} {value:?} is invalid: {reason}")]
    Corrupt { what: &'static str, value: String, reason: String },
}

/// Why a subscription cannot be redeemed or issued; each says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionRefusal {
    /// No subscription was issued for the edge.
    #[error("no subscription for edge {edge:?}; create one with `dsctl edge new-subscription {edge}`")]
    Missing { edge: String },
    /// The secret is not the subscription's.
    #[error("the subscription secret does not match; use the file `dsctl edge new-subscription` wrote")]
    WrongSecret,
    /// The subscription was redeemed before.
    #[error("this subscription was already used at {at}; create a new one with `dsctl edge new-subscription {edge}`")]
    AlreadyUsed { edge: String, at: String },
    /// The subscription's time ran out.
    #[error("this subscription expired at {at}; create a new one with `dsctl edge new-subscription {edge}`")]
    Expired { edge: String, at: String },
    /// The edge has a registered certificate already.
    #[error("edge {edge:?} is already subscribed; remove it with `dsctl edge remove {edge}` to subscribe it again")]
    AlreadySubscribed { edge: String },
    /// The presented certificate belongs to another edge.
    #[error("this certificate is already registered for edge {other:?}")]
    CertificateTaken { other: String },
}

/// One `Result` for the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Connects to PostgreSQL and applies pending migrations.
/// How long a call waits for a database connection before answering UNAVAILABLE.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects and applies the migrations.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // Short: with the database gone a call answers UNAVAILABLE within this, well
        // inside dsctl's 30 s deadline.
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Parses a stored value with a model parser, mapping failure to [`Error::Corrupt`].
pub(crate) fn parse_stored<T, E: std::fmt::Display>(
    what: &'static str,
    value: &str,
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> Result<T> {
    parse(value).map_err(|error| Error::Corrupt { what, value: value.to_owned(), reason: error.to_string() })
}

/// [`parse_stored`] for each entry of an array column.
pub(crate) fn parse_stored_all<T, E: std::fmt::Display>(
    what: &'static str,
    values: &[String],
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> Result<Vec<T>> {
    values.iter().map(|v| parse_stored(what, v, &parse)).collect()
}

/// Strings of any displayable values, for array columns.
pub(crate) fn strings<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

/// True when `error` is a unique-key violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// A stored message size limit.
pub(crate) fn stored_size(bytes: i64) -> Result<domainsec_model::MessageSize> {
    u64::try_from(bytes).ok().and_then(|b| domainsec_model::MessageSize::new(b).ok()).ok_or_else(|| Error::Corrupt {
        what: "message size",
        value: bytes.to_string(),
        reason: "out of range".to_owned(),
    })
}

/// A message size limit for a BIGINT column.
pub(crate) fn size_column(size: domainsec_model::MessageSize) -> i64 {
    i64::try_from(size.bytes()).unwrap_or(i64::MAX)
}

/// `/readyz` for the controller: the directory answers and its schema is at this
/// build's newest migration (a replica of an older build would be refused too).
pub fn readiness(pool: PgPool) -> domainsec_daemon::http::Ready {
    std::sync::Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            let newest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or_default();
            let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&pool)
                .await
                .map_err(|_| "the directory database is unreachable".to_owned())?;
            if applied != Some(newest) {
                return Err("the directory's schema is not at this build's migrations".to_owned());
            }
            Ok(())
        })
    })
}
