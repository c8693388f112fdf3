//! `init` and `admin-cert issue`: creating the organization and its admin credentials.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use domainsec_model::{ObjectName, Role, credentials::CredentialBundle};
use sqlx::PgPool;

use crate::{
    db,
    pki::{IssuedCertificate, OrgCa, PkiError},
    state_dir::{self, StateDir, StateError},
};

/// What `domainsec-controller init` needs.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The organization's name, e.g. `Contoso`.
    pub organization: String,
    /// Name in the first admin credential.
    pub admin_name: String,
    /// Admin API addresses to write into the credential (`host:port`).
    pub controllers: Vec<String>,
    /// Where to write the credential bundle.
    pub out_admin: PathBuf,
    /// Extra names for the admin API certificate.
    pub admin_hostnames: Vec<String>,
}

/// What `domainsec-controller admin-cert issue` needs.
#[derive(Debug, Clone)]
pub struct IssueOptions {
    /// Admin name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Edges a server-admin may manage.
    pub edges: Vec<String>,
    /// Validity in days.
    pub days: i64,
    /// Admin API addresses to write into the credential.
    pub controllers: Vec<String>,
    /// Where to write the bundle.
    pub out: PathBuf,
}

/// Why bootstrap failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The directory refused or failed.
    #[error(transparent)]
    Store(#[from] db::Error),
    /// State files could not be written or read.
    #[error(transparent)]
    State(#[from] StateError),
    /// Certificates could not be made.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The output file exists; credentials are never overwritten.
    #[error("{0} already exists; choose another --out file (credentials are never overwritten)")]
    OutputExists(PathBuf),
    /// Options that contradict each other.
    #[error("{0}")]
    Usage(String),
}

/// Creates the organization, its CA, the admin API certificate and the first
/// org-admin credential. Refuses, changing nothing, if the database already holds
/// an organization or the state dir already holds a CA.
pub async fn init(pool: &PgPool, state: &StateDir, options: &InitOptions) -> Result<CredentialBundle, BootstrapError> {
    refuse_existing(&options.out_admin)?;
    if options.organization.trim().is_empty() {
        return Err(BootstrapError::Usage("--org must not be empty".to_owned()));
    }
    let mut tx = pool.begin().await.map_err(db::Error::from)?;
    db::organization::create(&mut tx, &options.organization, "").await?;
    state.create_fresh()?;
    let (ca, ca_key_pem) = OrgCa::generate(&options.organization)?;
    sqlx::query("UPDATE organization SET ca_certificate_pem = $1 WHERE id = 1")
        .bind(ca.certificate_pem())
        .execute(&mut *tx)
        .await
        .map_err(db::Error::from)?;
    let api = ca.issue_admin_api(&options.organization, &options.admin_hostnames)?;
    let admin = ca.issue_admin(&options.organization, &options.admin_name, Role::OrgAdmin, ADMIN_VALIDITY_DAYS)?;
    record_admin(&mut tx, &admin, &options.admin_name, Role::OrgAdmin, &[]).await?;
    db::organization::record_controller_certificate(
        &mut tx,
        api.sha256.as_str(),
        "admin-api",
        &api.certificate_pem,
        to_chrono(api.not_after),
    )
    .await?;
    sqlx::query(
        "INSERT INTO audit_log (actor, actor_role, action, target, config_version, after)
         VALUES ('domainsec-controller init', 'org-admin', 'organization.init', $1, 1, $2)",
    )
    .bind(&options.organization)
    .bind(serde_json::json!({ "organization": options.organization, "first_admin": options.admin_name }))
    .execute(&mut *tx)
    .await
    .map_err(db::Error::from)?;
    // Version 1's configuration (empty), the start of the history.
    db::config_versions::record(&mut tx, 1).await?;
    let bundle = bundle(&ca, &admin, &options.admin_name, Role::OrgAdmin, &options.controllers);
    let written = write_state(state, &ca, &ca_key_pem, &api).and_then(|()| write_bundle(&options.out_admin, &bundle));
    if let Err(error) = written {
        state.remove_written();
        return Err(error);
    }
    if let Err(error) = tx.commit().await {
        state.remove_written();
        let _ = std::fs::remove_file(&options.out_admin);
        return Err(db::Error::from(error).into());
    }
    Ok(bundle)
}

/// Issues another admin credential and records it in the directory.
pub async fn issue_admin(
    pool: &PgPool,
    state: &StateDir,
    options: &IssueOptions,
) -> Result<CredentialBundle, BootstrapError> {
    refuse_existing(&options.out)?;
    match (options.role, options.edges.is_empty()) {
        (Role::ServerAdmin, true) => {
            return Err(BootstrapError::Usage(
                "--role server-admin needs --edges: the edges this admin may manage".to_owned(),
            ));
        }
        (Role::OrgAdmin | Role::ViewOnly, false) => {
            return Err(BootstrapError::Usage(format!(
                "--edges applies to --role server-admin only; {} is not scoped to edges",
                options.role
            )));
        }
        _ => {}
    }
    if options.name.trim().is_empty() {
        return Err(BootstrapError::Usage("--name must not be empty".to_owned()));
    }
    if !(1..=MAX_VALIDITY_DAYS).contains(&options.days) {
        return Err(BootstrapError::Usage(format!("--days must be from 1 to {MAX_VALIDITY_DAYS}")));
    }
    let organization = db::organization::fetch(pool).await?;
    let ca = OrgCa::load(&state.read(&state.ca_certificate())?, &state.read(&state.ca_key())?)?;
    let mut tx = pool.begin().await.map_err(db::Error::from)?;
    let mut edges = Vec::new();
    for (index, edge) in options.edges.iter().enumerate() {
        let name = ObjectName::parse(edge)
            .map_err(|e| db::Error::Invalid(domainsec_model::InvalidField::new(format!("edges[{index}]"), edge, e)))?;
        db::edges::resolve(&mut tx, &format!("edges[{index}]"), &name).await?;
        edges.push(name.to_string());
    }
    let admin = ca.issue_admin(&organization.name, &options.name, options.role, options.days)?;
    record_admin(&mut tx, &admin, &options.name, options.role, &edges).await?;
    let bundle = bundle(&ca, &admin, &options.name, options.role, &options.controllers);
    write_bundle(&options.out, &bundle)?;
    if let Err(error) = tx.commit().await {
        let _ = std::fs::remove_file(&options.out);
        return Err(db::Error::from(error).into());
    }
    Ok(bundle)
}

/// Loads the CA and makes sure the admin API has a certificate valid for at least
/// 30 more days, issuing a new one when not. Returns (certificate, key, CA) PEMs.
pub async fn admin_api_tls(
    pool: &PgPool,
    state: &StateDir,
    admin_hostnames: &[String],
) -> Result<crate::grpc::AdminTls, BootstrapError> {
    let organization = db::organization::fetch(pool).await?;
    let ca_certificate_pem = state.read(&state.ca_certificate())?;
    let current = state.read(&state.admin_api_certificate()).ok().zip(state.read(&state.admin_api_key()).ok());
    if let Some((certificate_pem, key_pem)) = current
        && valid_for_days(&certificate_pem, RENEW_BEFORE_DAYS)
        && admin_hostnames.is_empty()
    {
        return Ok(crate::grpc::AdminTls { certificate_pem, key_pem, ca_certificate_pem });
    }
    let ca = OrgCa::load(&ca_certificate_pem, &state.read(&state.ca_key())?)?;
    let api = ca.issue_admin_api(&organization.name, admin_hostnames)?;
    let mut conn = pool.acquire().await.map_err(db::Error::from)?;
    db::organization::record_controller_certificate(
        &mut conn,
        api.sha256.as_str(),
        "admin-api",
        &api.certificate_pem,
        to_chrono(api.not_after),
    )
    .await?;
    state_dir::write_file(&state.admin_api_key(), api.key_pem.as_bytes(), state_dir::PRIVATE)?;
    state_dir::write_file(&state.admin_api_certificate(), api.certificate_pem.as_bytes(), state_dir::PUBLIC)?;
    tracing::info!(sha256 = %api.sha256, "issued admin API certificate");
    Ok(crate::grpc::AdminTls { certificate_pem: api.certificate_pem, key_pem: api.key_pem, ca_certificate_pem })
}

fn valid_for_days(certificate_pem: &str, days: i64) -> bool {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(certificate_pem.as_bytes()) else {
        return false;
    };
    let Ok(certificate) = pem.parse_x509() else {
        return false;
    };
    let not_after = certificate.validity().not_after.timestamp();
    not_after > Utc::now().timestamp() + days * 86_400
}

async fn record_admin(
    conn: &mut sqlx::PgConnection,
    issued: &IssuedCertificate,
    name: &str,
    role: Role,
    edges: &[String],
) -> Result<(), db::Error> {
    db::admins::insert(
        conn,
        &db::admins::NewAdminCredential {
            sha256: issued.sha256.as_str(),
            name,
            role: role.as_str(),
            edges,
            serial: &issued.serial,
            not_after: to_chrono(issued.not_after),
        },
    )
    .await
}

fn bundle(ca: &OrgCa, admin: &IssuedCertificate, name: &str, role: Role, controllers: &[String]) -> CredentialBundle {
    CredentialBundle {
        controllers: controllers.to_vec(),
        server_name: CredentialBundle::SERVER_NAME.to_owned(),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        ca_certificate: ca.certificate_pem().to_owned(),
        certificate: admin.certificate_pem.clone(),
        private_key: admin.key_pem.clone(),
    }
}

fn write_state(state: &StateDir, ca: &OrgCa, ca_key_pem: &str, api: &IssuedCertificate) -> Result<(), BootstrapError> {
    state_dir::write_file(&state.ca_key(), ca_key_pem.as_bytes(), state_dir::PRIVATE)?;
    state_dir::write_file(&state.ca_certificate(), ca.certificate_pem().as_bytes(), state_dir::PUBLIC)?;
    state_dir::write_file(&state.admin_api_key(), api.key_pem.as_bytes(), state_dir::PRIVATE)?;
    state_dir::write_file(&state.admin_api_certificate(), api.certificate_pem.as_bytes(), state_dir::PUBLIC)?;
    Ok(())
}

fn write_bundle(path: &Path, bundle: &CredentialBundle) -> Result<(), BootstrapError> {
    let text = toml::to_string(bundle).map_err(|e| BootstrapError::Usage(format!("encode credential: {e}")))?;
    let text = format!(
        "# DomainSec admin credential for {:?} (role {}). Holds a private key: keep it mode 0600.\n{text}",
        bundle.name, bundle.role
    );
    state_dir::write_file(path, text.as_bytes(), state_dir::PRIVATE)?;
    Ok(())
}

fn refuse_existing(path: &Path) -> Result<(), BootstrapError> {
    if path.exists() {
        return Err(BootstrapError::OutputExists(path.to_owned()));
    }
    Ok(())
}

fn to_chrono(time: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(time.unix_timestamp(), 0).unwrap_or_default()
}

const ADMIN_VALIDITY_DAYS: i64 = 365;
const MAX_VALIDITY_DAYS: i64 = 3650;
const RENEW_BEFORE_DAYS: i64 = 30;
