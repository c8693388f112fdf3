//! Certificate operations: validate, queue a task for the edge, report.
//! The edge does the key work; the directory only ever holds public material.

use domainsec_model::{Domain, DomainPattern, InvalidField, ObjectName, SubjectName};
use proto::edge as pb;
use uuid::Uuid;

use super::{Directory, Result};
use crate::{
    authz::Admin,
    ca_certificate::CaCertificate,
    db::{
        self,
        certificates::{EdgeCertificate, Task},
        change::{Audit, Change, json},
    },
};

/// A `New-ExchangeCertificate` call, parsed.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// The edge that makes the key.
    pub edge: ObjectName,
    /// Subject; `None` means CN=<the edge's FQDN>.
    pub subject: Option<SubjectName>,
    /// Subject alternative names.
    pub domain_names: Vec<DomainPattern>,
    /// Add every accepted domain as a SAN.
    pub include_accepted_domains: bool,
    /// Friendly name.
    pub friendly_name: String,
    /// A PKCS#10 request instead of a self-signed certificate.
    pub generate_request: bool,
    /// `ecdsa-p256` or `ecdsa-p384`.
    pub key_algorithm: String,
    /// Services to enable (`smtp`).
    pub services: Vec<String>,
}

impl Directory {
    /// Queues a new certificate or request on an edge. Returns the task and warnings.
    pub async fn new_certificate(&self, admin: &Admin, spec: NewCertificate) -> Result<(Task, Vec<String>)> {
        admin.require_edges(&format!("create a certificate on edge {}", spec.edge), [&spec.edge])?;
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        let edge = db::edges::list(&mut conn).await?.into_iter().find(|e| e.name == spec.edge);
        let edge = edge.ok_or_else(|| db::edges::unknown("edge", &spec.edge))?;
        let subject = match spec.subject {
            Some(subject) => subject,
            None => SubjectName::common_name(edge.fqdn.as_str())
                .map_err(|e| InvalidField::new("subject_name", edge.fqdn.as_str(), e))?,
        };
        let mut names = spec.domain_names;
        if spec.include_accepted_domains {
            for accepted in db::accepted_domains::list(&mut conn).await? {
                if !names.contains(&accepted.domain) {
                    names.push(accepted.domain);
                }
            }
        }
        let kind = if spec.generate_request { "request" } else { "new" };
        let action = pb::certificate_task::Action::NewCertificate(pb::NewCertificate {
            subject_name: subject.to_string(),
            domain_names: names.iter().map(ToString::to_string).collect(),
            friendly_name: spec.friendly_name,
            generate_request: spec.generate_request,
            key_algorithm: spec.key_algorithm,
            services: spec.services,
        });
        let task = self.queue_task(admin, &spec.edge, kind, action).await?;
        Ok((task, subject.warnings))
    }

    /// Queues the import of an issued certificate on each edge.
    pub async fn import_certificate(
        &self,
        admin: &Admin,
        edges: Vec<ObjectName>,
        data: Vec<u8>,
        services: Vec<String>,
        friendly_name: String,
    ) -> Result<Vec<Task>> {
        admin.require_edges("import a certificate", &edges)?;
        check_public_only(&data)?;
        let mut tasks = Vec::new();
        for edge in &edges {
            let action = pb::certificate_task::Action::Import(pb::ImportCertificate {
                data: data.clone(),
                services: services.clone(),
                friendly_name: friendly_name.clone(),
            });
            tasks.push(self.queue_task(admin, edge, "import", action).await?);
        }
        Ok(tasks)
    }

    /// Queues a PFX import (certificate, chain and key) on each edge. The PFX is
    /// checked here with its password, then stored only sealed until each edge has it.
    pub async fn import_pfx(
        &self,
        admin: &Admin,
        edges: Vec<ObjectName>,
        pfx: Vec<u8>,
        password: String,
        services: Vec<String>,
        friendly_name: String,
    ) -> Result<Vec<Task>> {
        admin.require_edges("import a PFX", &edges)?;
        let store = p12_keystore::KeyStore::from_pkcs12(&pfx, &password, p12_keystore::Pkcs12ImportPolicy::Strict)
            .map_err(|e| {
                InvalidField::new(
                    "pfx",
                    "",
                    format!("cannot open the PFX: {e}; check the password (--password-file) and the file"),
                )
            })?;
        if store.private_key_chain().is_none_or(|(_, chain)| chain.certs().is_empty()) {
            return Err(InvalidField::new("pfx", "", "the PFX holds no private key with its certificate").into());
        }
        let mut tasks = Vec::new();
        for edge in &edges {
            let action = pb::certificate_task::Action::ImportPfx(pb::ImportPfx {
                pfx: pfx.clone(),
                password: password.clone(),
                services: services.clone(),
                friendly_name: friendly_name.clone(),
            });
            tasks.push(self.queue_task(admin, edge, "import-pfx", action).await?);
        }
        Ok(tasks)
    }

    /// Queues enabling a certificate for services. Returns the task and, for SMTP,
    /// a warning per TLSA owner name whose printed records miss the certificate's key
    /// (`dsctl publish tlsa`): the enable goes ahead, the operator is told.
    pub async fn enable_certificate(
        &self,
        admin: &Admin,
        edge: ObjectName,
        thumbprint: String,
        services: Vec<String>,
    ) -> Result<(Task, Vec<String>)> {
        admin.require_edges(&format!("enable a certificate on edge {edge}"), [&edge])?;
        let warnings = match services.iter().any(|s| s == "smtp") {
            true => self.tlsa_warnings(&edge, &thumbprint).await?,
            false => Vec::new(),
        };
        let action = pb::certificate_task::Action::Enable(pb::EnableCertificate { thumbprint, services });
        Ok((self.queue_task(admin, &edge, "enable", action).await?, warnings))
    }

    /// Queues `certutil -verify` of a certificate on its edge.
    pub async fn verify_certificate(&self, admin: &Admin, edge: ObjectName, thumbprint: String) -> Result<Task> {
        admin.require_edges(&format!("verify a certificate on edge {edge}"), [&edge])?;
        let action = pb::certificate_task::Action::Verify(pb::VerifyCertificate { thumbprint });
        self.queue_task(admin, &edge, "verify", action).await
    }

    /// Queues removing a certificate (or a pending request).
    pub async fn remove_certificate(&self, admin: &Admin, edge: ObjectName, thumbprint: String) -> Result<Task> {
        admin.require_edges(&format!("remove a certificate on edge {edge}"), [&edge])?;
        let action = pb::certificate_task::Action::Remove(pb::RemoveCertificate { thumbprint });
        self.queue_task(admin, &edge, "remove", action).await
    }

    /// Clones a certificate's metadata (subject, names, friendly name) into a new
    /// certificate or request with a new key, as the paper describes.
    pub async fn clone_certificate(
        &self,
        admin: &Admin,
        edge: ObjectName,
        thumbprint: &str,
        generate_request: bool,
        key_algorithm: String,
    ) -> Result<(Task, Vec<String>)> {
        admin.require_edges(&format!("clone a certificate on edge {edge}"), [&edge])?;
        let source = self
            .certificates(Some(&edge), Some(thumbprint), None)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| db::Error::NotFound { kind: "certificate", name: format!("{edge}/{thumbprint}") })?;
        let subject = SubjectName::parse(&source.subject)
            .map_err(|e| InvalidField::new("thumbprint", thumbprint, format!("its subject cannot be cloned: {e}")))?;
        let domain_names = source.dns_names.iter().filter_map(|n| DomainPattern::parse(n).ok()).collect();
        self.new_certificate(
            admin,
            NewCertificate {
                edge,
                subject: Some(subject),
                domain_names,
                include_accepted_domains: false,
                friendly_name: source.friendly_name,
                generate_request,
                key_algorithm,
                services: Vec::new(),
            },
        )
        .await
    }

    /// One task, for `dsctl cert task` and waiting.
    pub async fn certificate_task(&self, id: Uuid) -> Result<Task> {
        db::certificates::task(&self.pool, id)
            .await?
            .ok_or_else(|| db::Error::NotFound { kind: "certificate task", name: id.to_string() }.into())
    }

    /// Certificates as the edges last reported them, optionally filtered; for a
    /// domain, the ones whose names cover it, in the order SMTP would pick them.
    pub async fn certificates(
        &self,
        edge: Option<&ObjectName>,
        thumbprint: Option<&str>,
        domain: Option<&Domain>,
    ) -> Result<Vec<EdgeCertificate>> {
        let all = db::certificates::list(&self.pool, edge.map(ObjectName::as_str)).await?;
        Ok(all
            .into_iter()
            .filter(|c| thumbprint.is_none_or(|t| c.thumbprint.eq_ignore_ascii_case(t)))
            .filter(|c| {
                domain.is_none_or(|d| {
                    c.dns_names.iter().filter_map(|n| DomainPattern::parse(n).ok()).any(|n| n.covers(d))
                })
            })
            .collect())
    }

    pub(super) async fn queue_task(
        &self,
        admin: &Admin,
        edge: &ObjectName,
        kind: &str,
        action: pb::certificate_task::Action,
    ) -> Result<Task> {
        let mut tx = self.pool.begin().await.map_err(db::Error::from)?;
        let edge_id = db::edges::resolve(&mut tx, "edge", edge).await?;
        let id = Uuid::new_v4();
        let task = pb::CertificateTask { id: id.to_string(), action: Some(action) };
        let requested_by = format!("{} ({})", admin.name, admin.role);
        let seal = match kind {
            "import-pfx" => Some(self.edge_side()?.seal.clone()),
            _ => None,
        };
        db::certificates::queue(&mut tx, edge_id, edge.as_str(), kind, &task, &requested_by, seal.as_deref()).await?;
        tx.commit().await.map_err(db::Error::from)?;
        self.certificate_task(id).await
    }
}

impl Directory {
    /// Trusts a CA certificate (a private root or a cross-certificate) on every
    /// edge, or on the named ones; pushed with the next snapshot.
    pub async fn add_trusted_root(
        &self,
        admin: &Admin,
        data: &[u8],
        edges: Vec<ObjectName>,
    ) -> Result<(db::trusted_roots::TrustedRoot, u64)> {
        match edges.as_slice() {
            [] => admin.require_org_admin("add a trusted root for every edge")?,
            named => admin.require_edges("add a trusted root", named)?,
        }
        let certificate = CaCertificate::parse("data", data)?;
        let root = db::trusted_roots::TrustedRoot {
            sha256: certificate.sha256,
            subject: certificate.subject,
            certificate_pem: certificate.certificate_pem,
            edges: (!edges.is_empty()).then(|| edges.iter().map(ToString::to_string).collect()),
            added_by: admin.name.clone(),
            added_at: chrono::Utc::now(),
        };
        let mut tx = Change::begin(&self.pool).await?;
        for (index, edge) in edges.iter().enumerate() {
            db::edges::resolve(tx.conn(), &format!("edges[{index}]"), edge).await?;
        }
        db::trusted_roots::insert(tx.conn(), &root).await?;
        let version = tx
            .commit(Audit {
                actor: &admin.name,
                actor_role: admin.role.as_str(),
                action: "trusted-root.add",
                target: root.subject.clone(),
                before: None,
                after: json(&root),
            })
            .await?;
        Ok((root, version))
    }

    /// All trusted roots.
    pub async fn trusted_roots(&self) -> Result<Vec<db::trusted_roots::TrustedRoot>> {
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        Ok(db::trusted_roots::list(&mut conn).await?)
    }

    /// Stops trusting a root.
    pub async fn remove_trusted_root(&self, admin: &Admin, sha256: &str) -> Result<u64> {
        admin.require_org_admin("remove a trusted root")?;
        let mut tx = Change::begin(&self.pool).await?;
        let removed = db::trusted_roots::delete(tx.conn(), sha256).await?;
        Ok(tx
            .commit(Audit {
                actor: &admin.name,
                actor_role: admin.role.as_str(),
                action: "trusted-root.remove",
                target: removed.subject.clone(),
                before: json(&removed),
                after: None,
            })
            .await?)
    }
}

/// An import carries certificates only: a private key travels only inside a PFX.
fn check_public_only(data: &[u8]) -> Result<(), InvalidField> {
    if let Ok(blocks) = pem::parse_many(data)
        && !blocks.is_empty()
    {
        if let Some(block) = blocks.iter().find(|b| b.tag().contains("PRIVATE KEY")) {
            return Err(InvalidField::new(
                "data",
                block.tag(),
                "the file holds a private key; private keys never travel in a certificate import \
                 (import the certificate alone: the edge already holds the key it requested)",
            ));
        }
        if !blocks.iter().any(|b| b.tag() == "CERTIFICATE" || b.tag() == "PKCS7") {
            return Err(InvalidField::new("data", "", "the file holds no CERTIFICATE block"));
        }
        return Ok(());
    }
    if data.first() == Some(&0x30) {
        return Ok(());
    }
    Err(InvalidField::new("data", "", "the file is neither a PEM nor a DER certificate"))
}
