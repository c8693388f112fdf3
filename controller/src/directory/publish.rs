//! Publishing the organization's own DANE, MTA-STS and TLS-RPT records: read the
//! edges, their certificates and connectors, call [`crate::publication`] for the
//! texts, remember what must be remembered.

use chrono::{DateTime, Utc};
use domainsec_model::{Domain, ObjectName};

use super::{Directory, Result};
use crate::{
    authz::Admin,
    db::{
        self,
        certificates::EdgeCertificate,
        change::{Audit, Change, json},
        publication::{PrintedTlsa, StoredPolicy},
    },
    publication::{
        self, mta_sts,
        tls_rpt::{self, ReportUri},
        tlsa::{self, SmtpPort, SpkiSha256},
    },
};

/// One TLSA record for an edge's certificate.
#[derive(Debug, Clone)]
pub struct TlsaRecord {
    /// The edge.
    pub edge: ObjectName,
    /// `_25._tcp.mail1.contoso.com.`
    pub owner: String,
    /// The key hash.
    pub spki_sha256: SpkiSha256,
    /// The certificate's thumbprint.
    pub thumbprint: String,
    /// Not yet enabled for SMTP: the next certificate.
    pub next: bool,
    /// The certificate's end of validity (RFC 3339).
    pub not_after: String,
    /// The zone-file line.
    pub line: String,
}

/// What `publish tlsa` prints.
#[derive(Debug, Clone, Default)]
pub struct TlsaPublication {
    /// The records, per edge: current certificates first, then the next ones.
    pub records: Vec<TlsaRecord>,
    /// Edges with nothing (or less than expected) to publish, and why.
    pub notes: Vec<String>,
}

/// A TXT record for one accepted domain.
#[derive(Debug, Clone)]
pub struct TxtRecord {
    /// The domain.
    pub domain: Domain,
    /// The owner name.
    pub owner: String,
    /// The zone-file line.
    pub line: String,
}

/// What `publish mta-sts` prints.
#[derive(Debug, Clone)]
pub struct MtaStsPublication {
    /// The policy as stored (and served).
    pub policy: StoredPolicy,
    /// The MX hosts it names.
    pub mx: Vec<Domain>,
    /// `_mta-sts` TXT records, one per accepted domain.
    pub records: Vec<TxtRecord>,
    /// False when the stored policy had this text already.
    pub changed: bool,
}

impl Directory {
    /// TLSA "3 1 1" records for each edge's SMTP certificates and for the next
    /// certificate of each (see [`next_certificates`]), at each of the edge's host
    /// names; remembers them as printed. Any role.
    pub async fn publish_tlsa(&self, edge: Option<&ObjectName>, port: SmtpPort) -> Result<TlsaPublication> {
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        let mut edges = db::edges::list(&mut conn).await?;
        if let Some(name) = edge {
            edges.retain(|e| &e.name == name);
            if edges.is_empty() {
                return Err(db::edges::unknown("edge", name).into());
            }
        }
        let connectors = db::receive_connectors::list(&mut conn, edge).await?;
        drop(conn);
        let certificates = db::certificates::list(&self.pool, edge.map(ObjectName::as_str)).await?;
        let now = Utc::now();
        let mut publication = TlsaPublication::default();
        let mut tx = self.pool.begin().await.map_err(db::Error::from)?;
        for edge in &edges {
            let names = publication::host_names(
                &edge.fqdn,
                connectors.iter().map(|c| &c.connector).filter(|c| c.edge == edge.name),
            );
            let own: Vec<&EdgeCertificate> = certificates.iter().filter(|c| c.edge == edge.name.as_str()).collect();
            let current: Vec<&EdgeCertificate> = own.iter().copied().filter(|c| is_smtp(c)).collect();
            if current.is_empty() {
                publication.notes.push(format!(
                    "edge {}: no certificate enabled for SMTP (dsctl cert enable --edge {} --thumbprint T)",
                    edge.name, edge.name
                ));
            }
            let next = next_certificates(&own, now);
            let mut printed: Vec<PrintedTlsa> = Vec::new();
            for (certificate, is_next) in current.iter().map(|c| (*c, false)).chain(next.iter().map(|c| (*c, true))) {
                let spki_sha256 = match SpkiSha256::of_pem(&certificate.certificate_pem) {
                    Ok(spki) => spki,
                    Err(error) => {
                        publication
                            .notes
                            .push(format!("edge {}: certificate {}: {error}", edge.name, certificate.thumbprint));
                        continue;
                    }
                };
                for name in &names {
                    let owner = tlsa::owner(port, name);
                    if printed.iter().any(|p| p.owner == owner && p.spki_sha256 == spki_sha256) {
                        continue;
                    }
                    publication.records.push(TlsaRecord {
                        edge: edge.name.clone(),
                        line: tlsa::line(&owner, &spki_sha256),
                        owner: owner.clone(),
                        spki_sha256: spki_sha256.clone(),
                        thumbprint: certificate.thumbprint.clone(),
                        next: is_next,
                        not_after: certificate.not_after.clone(),
                    });
                    printed.push(PrintedTlsa { owner, spki_sha256: spki_sha256.clone() });
                }
            }
            let edge_id = db::edges::resolve(&mut tx, "edge", &edge.name).await?;
            db::publication::record_tlsa(&mut tx, edge_id, &printed).await?;
        }
        tx.commit().await.map_err(db::Error::from)?;
        Ok(publication)
    }

    /// Warnings for enabling `thumbprint` for SMTP on `edge`: one per owner name
    /// whose printed TLSA records all miss the certificate's key. None when no
    /// record was ever printed for the edge, or the certificate is not mirrored yet.
    pub(super) async fn tlsa_warnings(&self, edge: &ObjectName, thumbprint: &str) -> Result<Vec<String>> {
        let printed = db::publication::printed_tlsa(&self.pool, edge.as_str()).await?;
        if printed.is_empty() {
            return Ok(Vec::new());
        }
        let certificate = db::certificates::list(&self.pool, Some(edge.as_str()))
            .await?
            .into_iter()
            .find(|c| c.thumbprint.eq_ignore_ascii_case(thumbprint));
        let Some(spki) = certificate.and_then(|c| SpkiSha256::of_pem(&c.certificate_pem).ok()) else {
            return Ok(Vec::new());
        };
        let mut owners: Vec<&str> = printed.iter().map(|p| p.owner.as_str()).collect();
        owners.dedup();
        Ok(owners
            .into_iter()
            .filter_map(|owner| {
                let hashes: Vec<SpkiSha256> =
                    printed.iter().filter(|p| p.owner == owner).map(|p| p.spki_sha256.clone()).collect();
                (!hashes.contains(&spki)).then(|| tlsa::mismatch_warning(owner, &hashes, &spki))
            })
            .collect())
    }

    /// Builds the MTA-STS policy (mx: the host names of every edge with a receive
    /// connector open to the internet) and stores it with a new id when its text
    /// differs from the stored one; one change with an audit entry. Org-admin.
    pub async fn publish_mta_sts(
        &self,
        admin: &Admin,
        mode: mta_sts::Mode,
        max_age: mta_sts::MaxAge,
    ) -> Result<MtaStsPublication> {
        admin.require_org_admin("publish the MTA-STS policy")?;
        let mut tx = Change::begin(&self.pool).await?;
        let edges = db::edges::list(tx.conn()).await?;
        let connectors = db::receive_connectors::list(tx.conn(), None).await?;
        let mut mx: Vec<Domain> = Vec::new();
        for edge in &edges {
            let own: Vec<_> = connectors.iter().map(|c| &c.connector).filter(|c| c.edge == edge.name).collect();
            if !own.iter().any(|c| publication::serves_internet(c)) {
                continue;
            }
            for name in publication::host_names(&edge.fqdn, own) {
                if !mx.contains(&name) {
                    mx.push(name);
                }
            }
        }
        let policy = mta_sts::Policy::new(mode, max_age, mx.clone())?;
        let text = policy.text();
        let domains = self.published_domains(tx.conn()).await?;
        let before = db::publication::fetch_policy(tx.conn(), true).await?;
        if let Some(stored) = before.as_ref().filter(|stored| stored.text == text) {
            let records = mta_sts_records(&domains, &stored.id);
            return Ok(MtaStsPublication { policy: stored.clone(), mx, records, changed: false });
        }
        let now = Utc::now();
        let stored = StoredPolicy {
            mode: mode.as_str().to_owned(),
            max_age_seconds: max_age.seconds(),
            id: mta_sts::new_id(&text, now),
            text,
            published_by: admin.name.clone(),
            published_at: now,
        };
        db::publication::store_policy(tx.conn(), &stored).await?;
        tx.commit(Audit {
            actor: &admin.name,
            actor_role: admin.role.as_str(),
            action: "mta-sts.publish",
            target: "mta-sts-policy".to_owned(),
            before: before.as_ref().and_then(json),
            after: json(&stored),
        })
        .await?;
        let records = mta_sts_records(&domains, &stored.id);
        Ok(MtaStsPublication { policy: stored, mx, records, changed: true })
    }

    /// The TLS-RPT record for each accepted domain. Any role.
    pub async fn publish_tls_rpt(&self, rua: &[ReportUri]) -> Result<Vec<TxtRecord>> {
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        let domains = self.published_domains(&mut conn).await?;
        Ok(domains
            .into_iter()
            .map(|domain| TxtRecord { owner: tls_rpt::owner(&domain), line: tls_rpt::txt_line(&domain, rua), domain })
            .collect())
    }

    async fn published_domains(&self, conn: &mut sqlx::PgConnection) -> Result<Vec<Domain>> {
        let accepted = db::accepted_domains::list(conn).await?;
        Ok(publication::published_domains(accepted.iter().map(|a| &a.domain)))
    }
}

fn mta_sts_records(domains: &[Domain], id: &str) -> Vec<TxtRecord> {
    domains
        .iter()
        .map(|domain| TxtRecord {
            domain: domain.clone(),
            owner: mta_sts::owner(domain),
            line: mta_sts::txt_line(domain, id),
        })
        .collect()
}

fn is_smtp(certificate: &EdgeCertificate) -> bool {
    certificate.services.iter().any(|s| s == "smtp") && !certificate.certificate_pem.is_empty()
}

/// The certificates to publish ahead of a rollover (RFC 7671 section 8.1): on the
/// edge with their key, not enabled for SMTP, not expired at `now`, and issued after
/// the newest SMTP certificate (an older one left over from the last rollover is not
/// "next").
pub fn next_certificates<'a>(certificates: &[&'a EdgeCertificate], now: DateTime<Utc>) -> Vec<&'a EdgeCertificate> {
    let newest_current = certificates.iter().filter(|c| is_smtp(c)).filter_map(|c| time(&c.not_before)).max();
    certificates
        .iter()
        .copied()
        .filter(|c| !is_smtp(c) && c.key_status == "present" && !c.certificate_pem.is_empty())
        .filter(|c| time(&c.not_after).is_some_and(|end| end > now))
        .filter(|c| match (newest_current, time(&c.not_before)) {
            (Some(current), Some(start)) => start > current,
            (None, Some(_)) => true,
            (_, None) => false,
        })
        .collect()
}

fn time(rfc3339: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.with_timezone(&Utc))
}
