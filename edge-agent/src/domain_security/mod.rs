//! Domain Security (the white paper's heart): checking a partner's certificate —
//! chain, dates, key usage, revocation by CRL and the paper's name-matching
//! rules — and the decisions the SMTP layer takes with the result.

pub mod counters;
pub mod dane;
pub mod mark;
pub mod mta_sts;
pub mod name_match;
pub mod peer;
pub mod policy;
pub mod refusal;
pub mod revocation;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use domainsec_model::SendConnector;
use hickory_resolver::proto::rr::RecordType;

use crate::{
    apply::EdgeConfig,
    config::DomainSecuritySettings,
    routing::dns::{MxResolver, ValidatedAnswer},
};

use self::{
    counters::DomainSecurityCounters,
    mta_sts::MtaSts,
    peer::{PeerFailure, PeerRole, TrustSettings, TrustedPeer},
    policy::{DaneStatus, DomainFacts, OutboundPolicy},
    revocation::{CrlCache, ProxySettings, RevocationSettings},
};

/// What Domain Security shares across sessions and deliveries.
pub struct DomainSecurity {
    /// CRLs by URL.
    pub crls: CrlCache,
    /// The paper's counters.
    pub counters: DomainSecurityCounters,
    /// This edge's settings.
    pub settings: DomainSecuritySettings,
    /// MTA-STS policies (RFC 8461), cached.
    pub mta_sts: Arc<MtaSts>,
    /// The configuration version whose CRL proxy is in force (0: none yet).
    proxy_version: AtomicU64,
}

impl DomainSecurity {
    /// Loads the counters from `data_dir` and sets up the CRL cache.
    pub fn new(data_dir: &Path, settings: &DomainSecuritySettings, mta_sts: MtaSts) -> Self {
        let revocation =
            RevocationSettings { fetch_timeout: settings.crl_fetch_timeout, ..RevocationSettings::default() };
        Self {
            crls: CrlCache::new(revocation),
            counters: DomainSecurityCounters::load(data_dir),
            settings: settings.clone(),
            mta_sts: Arc::new(mta_sts),
            proxy_version: AtomicU64::new(0),
        }
    }

    /// Checks a peer's chain for `domain` against the configuration's trusted roots.
    pub async fn check(
        &self,
        config: &EdgeConfig,
        chain: &[Vec<u8>],
        role: PeerRole,
        domain: &str,
    ) -> Result<TrustedPeer, PeerFailure> {
        self.follow_proxy(config);
        peer::check(chain, role, domain, &self.trust(config), &self.crls).await
    }

    /// The outbound policy for mail to `domain` through `connector`: Domain Security when
    /// the list says so, else what the domain publishes (DANE, MTA-STS), looked up now.
    pub async fn outbound_policy(
        &self,
        config: &EdgeConfig,
        connector: &SendConnector,
        domain: &str,
        resolver: &MxResolver,
    ) -> OutboundPolicy {
        let requirement = policy::outbound_requirement(config, connector, domain);
        let (dane, sts) = policy::published_sources(connector);
        let facts = match requirement {
            policy::OutboundRequirement::Required { .. } => {
                DomainFacts { mx: Err("Domain Security applies".into()), sts: Err("Domain Security applies".into()) }
            }
            policy::OutboundRequirement::NotRequired => {
                let mx = async {
                    let stub = dane.and_then(|()| resolver.validating().cloned().map_err(str::to_owned))?;
                    Ok(stub.query(domain, RecordType::MX).await)
                };
                let sts = async {
                    sts?;
                    Ok(self.mta_sts.lookup(resolver, domain).await)
                };
                let (mx, sts) = tokio::join!(mx, sts);
                DomainFacts { mx, sts }
            }
        };
        policy::outbound_policy(requirement, domain, facts)
    }

    /// MX `host`'s TLSA records (`_PORT._tcp.HOST`), asked only when DANE applies to the domain.
    pub async fn tlsa(&self, policy: &OutboundPolicy, host: &str, resolver: &MxResolver) -> Option<ValidatedAnswer> {
        let OutboundPolicy::Published { dane: DaneStatus::Applies(_), .. } = policy else { return None };
        let stub = resolver.validating().ok()?;
        Some(stub.query(&format!("_{}._tcp.{host}", resolver.smtp_port()), RecordType::TLSA).await)
    }

    /// Takes the configuration's CRL proxy (from `dsctl transport-config set
    /// --crl-proxy`) when the configuration version moved since the last time.
    pub fn follow_proxy(&self, config: &EdgeConfig) {
        if self.proxy_version.swap(config.version, Ordering::AcqRel) == config.version {
            return;
        }
        let proxy = config.transport.crl_proxy.as_ref().map(ToString::to_string).unwrap_or_default();
        let bypass: Vec<String> = config.transport.crl_proxy_bypass.iter().map(ToString::to_string).collect();
        match ProxySettings::parse(&proxy, &bypass.join(";")) {
            Ok(settings) => self.crls.set_proxy(settings),
            Err(error) => tracing::warn!(%error, "CRL proxy setting not usable; fetching directly"),
        }
    }

    /// `dsctl cert verify`'s revocation steps for one of our certificates: a line
    /// per certificate of the chain (fetched, cached, unsupported `ldap://`, …) and
    /// the verdict (false when revoked or not checkable).
    pub async fn revocation_report(&self, config: &EdgeConfig, chain: &[Vec<u8>]) -> (Vec<String>, bool) {
        self.follow_proxy(config);
        let mut lines = peer::describe_revocation(chain, &self.trust(config), &self.crls).await;
        let verdict = peer::revocation_only(chain, &self.trust(config), &self.crls).await;
        lines.push(match &verdict {
            Ok(()) => "revocation: ok; not on any CRL".to_owned(),
            Err(failure) => format!("revocation: FAILED: {failure}"),
        });
        (lines, verdict.is_ok())
    }

    fn trust<'a>(&self, config: &'a EdgeConfig) -> TrustSettings<'a> {
        TrustSettings { organization_roots: &config.trusted_roots, platform_roots: self.settings.platform_roots }
    }

    /// The role a connecting partner's certificate is checked for.
    pub fn client_role(&self) -> PeerRole {
        PeerRole::Client { accept_server_auth: self.settings.accept_server_auth_client_certificates }
    }

    /// Notes the leaf of `chain` as seen from the partner under list `entry`, for
    /// `dsctl partner report` and the expiry watch (whether it passed or not).
    pub fn observe(&self, entry: &domainsec_model::DomainPattern, chain: &[Vec<u8>]) {
        let Some(leaf) = chain.first() else { return };
        let Ok((_, certificate)) = x509_parser::parse_x509_certificate(leaf) else { return };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let seen = counters::SeenCertificate {
            subject: certificate.subject().to_string(),
            issuer: certificate.issuer().to_string(),
            not_after: certificate.validity().not_after.timestamp(),
            last_seen: i64::try_from(now).unwrap_or(i64::MAX),
        };
        self.counters.certificate_seen(entry, &domainsec_model::Fingerprint::of(leaf).to_string(), seen);
    }
}
