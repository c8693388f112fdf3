//! Snapshots: the organization's configuration read once per version, cut per edge.
//!
//! With thousands of edges, a change must not mean thousands of reads: the cache
//! loads the whole configuration once (in one consistent read) and each edge's
//! snapshot is a filter over it.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, RwLock},
};

use domainsec_model::{Domain, ReceiveConnector, Routing, SendConnector, TransportConfig};
use proto::edge as pb;
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::db;

/// The organization's configuration at one version, already in wire form: a push
/// to each of thousands of edges only filters and clones, it formats nothing.
pub struct OrgConfig {
    /// The config version it was read at.
    pub version: u64,
    organization: String,
    transport: pb::TransportConfig,
    accepted_domains: Vec<String>,
    /// Each send connector with the edges it lists as sources.
    send_connectors: Vec<(Vec<String>, pb::SendConnector)>,
    receive_connectors: HashMap<String, Vec<pb::ReceiveConnector>>,
    edges: HashMap<String, String>,
    controller_certificates: Vec<String>,
    trusted_roots: Vec<crate::db::trusted_roots::TrustedRoot>,
    /// The parent domains of every edge and receive connector FQDN, sorted, once.
    organization_domains: Vec<String>,
}

/// The newest [`OrgConfig`], loaded at most once per version.
///
/// Thousands of edge streams ask at once when the version moves: they read
/// under a plain read lock, and only a stale cache takes the loading lock.
#[derive(Default)]
pub struct SnapshotCache {
    current: RwLock<Option<Arc<OrgConfig>>>,
    loading: Mutex<()>,
}

impl SnapshotCache {
    /// The configuration at `version` or newer.
    pub async fn at_least(&self, pool: &PgPool, version: u64) -> Result<Arc<OrgConfig>, db::Error> {
        if let Some(config) = self.cached(version) {
            return Ok(config);
        }
        let _loading = self.loading.lock().await;
        if let Some(config) = self.cached(version) {
            return Ok(config);
        }
        let config = Arc::new(OrgConfig::load(pool).await?);
        if let Ok(mut current) = self.current.write() {
            *current = Some(config.clone());
        }
        Ok(config)
    }

    fn cached(&self, version: u64) -> Option<Arc<OrgConfig>> {
        let current = self.current.read().ok()?;
        current.as_ref().filter(|config| config.version >= version).cloned()
    }
}

impl OrgConfig {
    /// Reads everything in one repeatable-read transaction, so the parts agree.
    pub async fn load(pool: &PgPool) -> Result<Self, db::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
        let (organization, version): (String, i64) =
            sqlx::query_as("SELECT name, config_version FROM organization WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(db::Error::NoOrganization)?;
        let transport = db::transport::fetch(&mut tx).await?;
        let accepted_domains =
            db::accepted_domains::list(&mut tx).await?.into_iter().map(|d| d.domain.to_string()).collect();
        let send_connectors = db::send_connectors::list(&mut tx)
            .await?
            .into_iter()
            .map(|stored| (strings(&stored.connector.source_edges), send_connector(&stored.connector)))
            .collect();
        let mut receive_connectors: HashMap<String, Vec<pb::ReceiveConnector>> = HashMap::new();
        let mut organization_domains = BTreeSet::new();
        for stored in db::receive_connectors::list(&mut tx, None).await? {
            organization_domains.extend(stored.connector.fqdn.as_ref().map(parent_domain));
            receive_connectors
                .entry(stored.connector.edge.to_string())
                .or_default()
                .push(receive_connector(&stored.connector));
        }
        let edges: HashMap<String, String> = db::edges::list(&mut tx)
            .await?
            .into_iter()
            .map(|e| {
                organization_domains.insert(parent_domain(&e.fqdn));
                (e.name.to_string(), e.fqdn.to_string())
            })
            .collect();
        let controller_certificates = sqlx::query_scalar(
            "SELECT certificate_pem FROM controller_certificates
             WHERE purpose = 'edge-sync' AND not_after > now() ORDER BY created_at",
        )
        .fetch_all(&mut *tx)
        .await?;
        let trusted_roots = db::trusted_roots::list(&mut tx).await?;
        tx.commit().await?;
        Ok(Self {
            version: u64::try_from(version).unwrap_or_default(),
            organization,
            transport: transport_config(&transport),
            accepted_domains,
            send_connectors,
            receive_connectors,
            edges,
            controller_certificates,
            trusted_roots,
            organization_domains: organization_domains.into_iter().collect(),
        })
    }

    /// The snapshot for one edge; `None` if the edge is not in the directory.
    pub fn snapshot_for(&self, edge: &str) -> Option<pb::Snapshot> {
        let fqdn = self.edges.get(edge)?;
        Some(pb::Snapshot {
            version: self.version,
            organization: self.organization.clone(),
            edge: Some(pb::EdgeIdentity { name: edge.to_owned(), fqdn: fqdn.clone() }),
            transport_config: Some(self.transport.clone()),
            accepted_domains: self.accepted_domains.clone(),
            send_connectors: self
                .send_connectors
                .iter()
                .filter(|(sources, _)| sources.iter().any(|e| e == edge))
                .map(|(_, connector)| connector.clone())
                .collect(),
            receive_connectors: self.receive_connectors.get(edge).cloned().unwrap_or_default(),
            controller_certificates: self.controller_certificates.clone(),
            trusted_roots: self
                .trusted_roots
                .iter()
                .filter(|root| root.edges.as_ref().is_none_or(|edges| edges.iter().any(|e| e == edge)))
                .map(|root| root.certificate_pem.clone())
                .collect(),
            organization_domains: self.organization_domains.clone(),
        })
    }
}

/// The domain an edge's FQDN belongs to: `mail1.contoso.com` → `contoso.com`; a
/// two-label name is its own domain.
fn parent_domain(fqdn: &Domain) -> String {
    let name = fqdn.as_str();
    match name.split_once('.') {
        Some((_, parent)) if parent.contains('.') => parent.to_owned(),
        _ => name.to_owned(),
    }
}

fn transport_config(transport: &TransportConfig) -> pb::TransportConfig {
    pb::TransportConfig {
        tls_send_domain_secure_list: strings(&transport.tls_send_domain_secure_list),
        tls_receive_domain_secure_list: strings(&transport.tls_receive_domain_secure_list),
        crl_proxy: transport.crl_proxy.as_ref().map(ToString::to_string).unwrap_or_default(),
        crl_proxy_bypass: strings(&transport.crl_proxy_bypass),
    }
}

fn send_connector(connector: &SendConnector) -> pb::SendConnector {
    pb::SendConnector {
        name: connector.name.to_string(),
        address_spaces: strings(&connector.address_spaces),
        smart_hosts: match &connector.routing {
            Routing::Dns => Vec::new(),
            Routing::SmartHosts(hosts) => strings(hosts),
        },
        fqdn: connector.fqdn.as_ref().map(ToString::to_string).unwrap_or_default(),
        domain_secure_enabled: connector.domain_secure_enabled,
        protocol_logging_level: connector.protocol_logging_level.to_string(),
        max_message_size: connector.max_message_size.bytes(),
        dane_disabled: !connector.dane_enabled,
        mta_sts_disabled: !connector.mta_sts_enabled,
    }
}

fn receive_connector(connector: &ReceiveConnector) -> pb::ReceiveConnector {
    pb::ReceiveConnector {
        name: connector.name.to_string(),
        bindings: strings(&connector.bindings),
        remote_ip_ranges: strings(&connector.remote_ip_ranges),
        fqdn: connector.fqdn.as_ref().map(ToString::to_string).unwrap_or_default(),
        auth_mechanisms: strings(&connector.auth_mechanisms),
        domain_secure_enabled: connector.domain_secure_enabled,
        permission_groups: strings(&connector.permission_groups),
        protocol_logging_level: connector.protocol_logging_level.to_string(),
        max_message_size: connector.max_message_size.bytes(),
    }
}

fn strings<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}
