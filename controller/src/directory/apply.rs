//! Writing a configuration document: what differs between the directory's
//! configuration and the document, object by object, inside one change.
//!
//! Each write goes through the same table functions as the single-object calls, so
//! the directory's own checks (bindings shared on an edge, references to edges) run
//! here too; an error names the object by its key (`receive_connectors[mail1/Inet]`).

use domainsec_model::{InvalidField, ObjectName};

use super::Result;
use crate::{
    authz::Admin,
    db::{self, change::Change, trusted_roots::TrustedRoot},
    document::{ConfigDocument, TrustedRootEntry},
};

/// Writes `target` over `current` (read in the same change). Refuses, before any
/// write, to remove an edge that is subscribed or has an outstanding subscription,
/// and to change an edge's FQDN. Returns the edges it removed.
pub(super) async fn write(
    tx: &mut Change,
    admin: &Admin,
    current: &ConfigDocument,
    target: &ConfigDocument,
) -> Result<Vec<ObjectName>> {
    let removed_edges = check_edges(tx, current, target).await?;
    if current.transport != target.transport {
        db::transport::store(tx.conn(), &target.transport).await?;
    }
    write_accepted_domains(tx, current, target).await?;
    for edge in target.edges.iter().filter(|e| !current.edges.iter().any(|c| c.name == e.name)) {
        db::edges::insert(tx.conn(), &edge.name, &edge.fqdn)
            .await
            .map_err(|e| at(&format!("edges[{}]", edge.name), e))?;
        tx.edges_changed();
    }
    write_connectors(tx, current, target).await?;
    write_trusted_roots(tx, admin, current, target).await?;
    for name in &removed_edges {
        db::edges::delete(tx.conn(), name).await?;
        tx.edges_changed();
    }
    Ok(removed_edges)
}

/// The edges `target` removes, once each is known to be neither subscribed nor
/// waiting to subscribe; and no edge's FQDN changes.
async fn check_edges(tx: &mut Change, current: &ConfigDocument, target: &ConfigDocument) -> Result<Vec<ObjectName>> {
    for edge in &target.edges {
        if let Some(now) = current.edges.iter().find(|c| c.name == edge.name && c.fqdn != edge.fqdn) {
            return Err(InvalidField::new(
                format!("edges[{}].fqdn", edge.name),
                edge.fqdn.as_str(),
                format!(
                    "edge {} has FQDN {}; an edge's FQDN is fixed when it is created (its subscription and \
                     certificates carry it): remove the edge and add it again",
                    edge.name, now.fqdn
                ),
            )
            .into());
        }
    }
    let stored = db::edges::list(tx.conn()).await?;
    let mut removed = Vec::new();
    for edge in current.edges.iter().filter(|c| !target.edges.iter().any(|e| e.name == c.name)) {
        let name = edge.name.as_str();
        let refusal = if stored.iter().any(|s| s.name == edge.name && s.certificate_sha256.is_some()) {
            Some("is subscribed: it holds a direct-trust certificate and runs this configuration")
        } else if db::subscriptions::outstanding(tx.conn(), name).await? {
            Some("has an outstanding subscription that an edge may redeem")
        } else {
            None
        };
        if let Some(reason) = refusal {
            return Err(InvalidField::new(
                "edges",
                name,
                format!(
                    "the document removes edge {name}, which {reason}; a configuration document never removes \
                     a live edge: remove it with `dsctl edge remove {name}` (which cuts it off), or keep it in the \
                     document"
                ),
            )
            .into());
        }
        removed.push(edge.name.clone());
    }
    Ok(removed)
}

async fn write_accepted_domains(tx: &mut Change, current: &ConfigDocument, target: &ConfigDocument) -> Result<()> {
    for domain in current.accepted_domains.iter().filter(|d| !target.accepted_domains.contains(d)) {
        db::accepted_domains::delete(tx.conn(), domain).await?;
    }
    for domain in target.accepted_domains.iter().filter(|d| !current.accepted_domains.contains(d)) {
        db::accepted_domains::insert(tx.conn(), domain).await?;
    }
    Ok(())
}

/// Removals first, then changes and additions, so a binding or a name that moves
/// from a removed connector to another one is free when it is written.
async fn write_connectors(tx: &mut Change, current: &ConfigDocument, target: &ConfigDocument) -> Result<()> {
    let same_receive = |a: &domainsec_model::ReceiveConnector, b: &domainsec_model::ReceiveConnector| {
        a.edge == b.edge && a.name == b.name
    };
    for old in
        current.receive_connectors.iter().filter(|c| !target.receive_connectors.iter().any(|t| same_receive(c, t)))
    {
        db::receive_connectors::delete(tx.conn(), &old.edge, &old.name).await?;
    }
    for old in current.send_connectors.iter().filter(|c| !target.send_connectors.iter().any(|t| t.name == c.name)) {
        db::send_connectors::delete(tx.conn(), &old.name).await?;
    }
    for connector in &target.send_connectors {
        let path = format!("send_connectors[{}]", connector.name);
        match current.send_connectors.iter().find(|c| c.name == connector.name) {
            Some(old) if old == connector => {}
            Some(_) => db::send_connectors::update(tx.conn(), connector).await.map_err(|e| at(&path, e))?,
            None => db::send_connectors::insert(tx.conn(), connector).await.map_err(|e| at(&path, e))?,
        }
    }
    for connector in target.receive_connectors.iter().filter(|c| !current.receive_connectors.contains(c)) {
        let path = format!("receive_connectors[{}/{}]", connector.edge, connector.name);
        let written = if current.receive_connectors.iter().any(|old| same_receive(old, connector)) {
            db::receive_connectors::update(tx.conn(), connector).await
        } else {
            db::receive_connectors::insert(tx.conn(), connector).await
        };
        written.map_err(|e| at(&path, e))?;
    }
    Ok(())
}

async fn write_trusted_roots(
    tx: &mut Change,
    admin: &Admin,
    current: &ConfigDocument,
    target: &ConfigDocument,
) -> Result<()> {
    let find = |list: &[TrustedRootEntry], sha256: &str| list.iter().find(|r| r.certificate.sha256 == sha256).cloned();
    for old in &current.trusted_roots {
        if find(&target.trusted_roots, &old.certificate.sha256).is_none() {
            db::trusted_roots::delete(tx.conn(), &old.certificate.sha256).await?;
        }
    }
    for root in &target.trusted_roots {
        let edges = root.edges.as_deref().map(db::strings);
        match find(&current.trusted_roots, &root.certificate.sha256) {
            Some(old) if old.edges == root.edges => {}
            Some(_) => db::trusted_roots::set_edges(tx.conn(), &root.certificate.sha256, edges).await?,
            None => {
                let stored = TrustedRoot {
                    sha256: root.certificate.sha256.clone(),
                    subject: root.certificate.subject.clone(),
                    certificate_pem: root.certificate.certificate_pem.clone(),
                    edges,
                    added_by: admin.name.clone(),
                    added_at: chrono::Utc::now(),
                };
                db::trusted_roots::insert(tx.conn(), &stored).await?;
            }
        }
    }
    Ok(())
}

/// A store error about one object of the document, its field under the object's key.
fn at(path: &str, error: db::Error) -> super::Error {
    match error {
        db::Error::Invalid(mut invalid) => {
            invalid.field = format!("{path}.{}", invalid.field);
            db::Error::Invalid(invalid).into()
        }
        other => other.into(),
    }
}
