//! The organization's whole configuration as one declarative document
//! (`dsctl config export` / `apply` / `rollback`, schema [`SCHEMA`]).
//!
//! What is in it is what the directory holds as configuration: the transport config,
//! accepted domains, edges (name and FQDN), send and receive connectors, trusted
//! roots (public CA certificates). Never in it: private keys, admin credentials,
//! subscriptions, PFX bundles, the edges' direct-trust or SMTP certificates.
//!
//! # Layout
//! - this file: [`ConfigDocument`], its canonical order and the rules that span it.
//! - `wire`: the YAML/JSON shape (strings), parsed into model types naming each field.
//! - `diff`: `-`/`+` differences between two JSON documents (apply, `audit show`).

mod diff;
mod wire;

use domainsec_model::{
    Domain, DomainPattern, InvalidField, ObjectName, ReceiveConnector, SendConnector, TransportConfig,
};

use crate::ca_certificate::CaCertificate;
pub use diff::{Difference, differences};

/// The schema this build reads and writes. A document naming another one is refused.
pub const SCHEMA: &str = "domainsec.config/v1";

/// The organization's configuration, parsed: every value valid by construction, the
/// collections in canonical order (see [`ConfigDocument::canonicalize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDocument {
    /// The organization's name; a document is applied only to its own organization.
    pub organization: String,
    /// Secure-domain lists and CRL proxy settings.
    pub transport: TransportConfig,
    /// Domains the organization accepts mail for.
    pub accepted_domains: Vec<DomainPattern>,
    /// Edges by name.
    pub edges: Vec<EdgeEntry>,
    /// Send connectors by name.
    pub send_connectors: Vec<SendConnector>,
    /// Receive connectors by edge, then name.
    pub receive_connectors: Vec<ReceiveConnector>,
    /// Trusted roots by SHA-256.
    pub trusted_roots: Vec<TrustedRootEntry>,
}

/// An edge as configuration: its name and FQDN (no certificate, no subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeEntry {
    /// Unique name.
    pub name: ObjectName,
    /// Internet FQDN: default certificate CN and EHLO name.
    pub fqdn: Domain,
}

/// A trusted root and the edges it is pushed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRootEntry {
    /// The CA certificate.
    pub certificate: CaCertificate,
    /// Only these edges; `None` for every edge.
    pub edges: Option<Vec<ObjectName>>,
}

impl ConfigDocument {
    /// Parses a YAML (or JSON) document: the shape, every value, and the rules that
    /// span the document. The organization is checked by the caller, which knows it.
    pub fn from_yaml(text: &str) -> Result<Self, InvalidField> {
        let wire: wire::Document = serde_norway::from_str(text)
            .map_err(|error| InvalidField::new("document", "", format!("{error} (see `dsctl config export`)")))?;
        Self::from_wire(wire)
    }

    /// Parses a document stored as JSON (a config version, an audit row).
    pub fn from_json(value: serde_json::Value) -> Result<Self, InvalidField> {
        let wire: wire::Document =
            serde_json::from_value(value).map_err(|error| InvalidField::new("document", "", error))?;
        Self::from_wire(wire)
    }

    /// The document as YAML, after a `#` comment line for each line of `header`.
    pub fn to_yaml(&self, header: &str) -> String {
        let mut text: String = header.lines().map(|line| format!("# {line}\n")).collect();
        // A struct of strings, lists and numbers always serialises.
        text.push_str(&serde_norway::to_string(&self.to_wire()).unwrap_or_default());
        text
    }

    /// The document as JSON, as it is stored and audited.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.to_wire()).unwrap_or_default()
    }

    /// Sorts the collections that are sets (accepted domains) or keyed by name
    /// (edges, connectors, trusted roots), so two documents with the same content
    /// compare equal whatever order their author wrote. Lists whose order an operator
    /// sees or that matters (secure-domain lists, smart hosts, source edges) keep theirs.
    pub fn canonicalize(&mut self) {
        self.accepted_domains.sort_by_key(ToString::to_string);
        self.edges.sort_by(|a, b| a.name.cmp(&b.name));
        self.send_connectors.sort_by(|a, b| a.name.cmp(&b.name));
        self.receive_connectors.sort_by(|a, b| (&a.edge, &a.name).cmp(&(&b.edge, &b.name)));
        self.trusted_roots.sort_by(|a, b| a.certificate.sha256.cmp(&b.certificate.sha256));
    }

    /// The rules that span the document: unique names, and every edge a connector
    /// or trusted root names is one of the document's edges. Single values and each
    /// connector's own rules were checked when they were parsed.
    pub fn check(&self) -> Result<(), InvalidField> {
        let known = |name: &ObjectName| self.edges.iter().any(|edge| &edge.name == name);
        let unknown = |field: String, name: &ObjectName| {
            InvalidField::new(field, name.as_str(), "not one of this document's edges (edges[].name)")
        };
        for (index, edge) in self.edges.iter().enumerate() {
            if let Some(first) = self.edges[..index].iter().position(|e| e.name == edge.name) {
                return Err(duplicate(format!("edges[{index}].name"), edge.name.as_str(), format!("edges[{first}]")));
            }
        }
        for (index, connector) in self.send_connectors.iter().enumerate() {
            if let Some(first) = self.send_connectors[..index].iter().position(|c| c.name == connector.name) {
                let field = format!("send_connectors[{index}].name");
                return Err(duplicate(field, connector.name.as_str(), format!("send_connectors[{first}]")));
            }
            if let Some((edge_index, edge)) = connector.source_edges.iter().enumerate().find(|(_, e)| !known(e)) {
                return Err(unknown(format!("send_connectors[{index}].source_edges[{edge_index}]"), edge));
            }
        }
        for (index, connector) in self.receive_connectors.iter().enumerate() {
            let same = |c: &ReceiveConnector| c.edge == connector.edge && c.name == connector.name;
            if let Some(first) = self.receive_connectors[..index].iter().position(same) {
                let field = format!("receive_connectors[{index}].name");
                return Err(duplicate(
                    field,
                    connector.name.as_str(),
                    format!("receive_connectors[{first}] on this edge"),
                ));
            }
            if !known(&connector.edge) {
                return Err(unknown(format!("receive_connectors[{index}].edge"), &connector.edge));
            }
        }
        for (index, root) in self.trusted_roots.iter().enumerate() {
            let same = |r: &TrustedRootEntry| r.certificate.sha256 == root.certificate.sha256;
            if let Some(first) = self.trusted_roots[..index].iter().position(same) {
                let field = format!("trusted_roots[{index}]");
                return Err(duplicate(field, &root.certificate.subject, format!("trusted_roots[{first}]")));
            }
            let edges = root.edges.iter().flatten().enumerate();
            if let Some((edge_index, edge)) = edges.clone().find(|(_, e)| !known(e)) {
                return Err(unknown(format!("trusted_roots[{index}].edges[{edge_index}]"), edge));
            }
        }
        Ok(())
    }
}

fn duplicate(field: String, value: &str, first: String) -> InvalidField {
    InvalidField::new(field, value, format!("duplicate of {first}"))
}

#[cfg(test)]
mod tests;
