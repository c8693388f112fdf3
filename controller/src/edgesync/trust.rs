//! The controller's direct trust: the certificate hashes of subscribed edges,
//! cached from the directory and reloaded whenever the set changes.

use std::{collections::HashMap, sync::RwLock};

use sqlx::PgPool;

use crate::db;

/// Fingerprint → edge name of every subscribed edge.
#[derive(Default)]
pub struct TrustedEdges {
    edges: RwLock<HashMap<String, String>>,
}

impl TrustedEdges {
    /// Replaces the cache with the directory's current set.
    pub async fn reload(&self, pool: &PgPool) -> Result<(), db::Error> {
        let mut conn = pool.acquire().await?;
        let edges: HashMap<String, String> = db::subscriptions::trusted_edges(&mut conn).await?.into_iter().collect();
        if let Ok(mut guard) = self.edges.write() {
            *guard = edges;
        }
        Ok(())
    }

    /// The edge with this certificate, if it is trusted.
    pub fn edge_for(&self, sha256: &str) -> Option<String> {
        self.edges.read().ok().and_then(|edges| edges.get(sha256).cloned())
    }

    /// Names of all trusted edges.
    pub fn edge_names(&self) -> Vec<String> {
        self.edges.read().map(|edges| edges.values().cloned().collect()).unwrap_or_default()
    }

    /// Stops trusting an edge at once (before the directory reload confirms it).
    pub fn forget_edge(&self, name: &str) {
        if let Ok(mut edges) = self.edges.write() {
            edges.retain(|_, edge| edge != name);
        }
    }
}
