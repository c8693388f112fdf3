//! Inbound Domain Security at `MAIL FROM`: whether the sender's domain requires
//! it (decided by [`policy::inbound_requirement`]), and the partner's certificate
//! check with the refusal that names the problem.

use domainsec_model::{Domain, DomainPattern};
use tracing::info;

use super::{Secured, Session};
use crate::{
    domain_security::{
        peer::PeerFailure,
        policy::{self, InboundRequirement},
    },
    protocol_log::Event,
    smtp::{address::Mailbox, reply::Reply},
};

impl Session {
    /// What Domain Security asks of mail from `from` on this connector.
    pub(super) fn inbound_requirement(&self, from: Option<&Mailbox>) -> InboundRequirement {
        policy::inbound_requirement(&self.context.config, &self.context.connector, from.map(Mailbox::domain))
    }

    /// A sender domain that is not a valid name, under a secure-list entry: refused,
    /// whatever the session presented (no certificate can match it).
    pub(super) fn refuse_malformed(&mut self, entry: &DomainPattern) -> Reply {
        self.context.security.counters.inbound_refusal(entry, "malformed-domain");
        self.log.record(Event::Information, &entry.to_string(), "Domain Security: malformed sender domain");
        Reply::new(550, "5.1.8", format!("Domain Security for {entry}: the sender's domain is not a valid domain name"))
    }

    /// The paper's inbound rule: TLS, a client certificate, a trusted chain, not
    /// revoked, a name matching the sender's domain. The refusal names the problem;
    /// counters go under the list `entry` that asked for it.
    pub(super) async fn verify_partner(&mut self, entry: &DomainPattern, domain: &Domain) -> Result<Secured, Reply> {
        let security = self.context.security.clone();
        let temporary = security.settings.temporary_refusals;
        let refuse = |code: u16, status: &'static str, kind: &'static str, problem: String| {
            security.counters.inbound_refusal(entry, kind);
            let (code, status) = if temporary { (450, temporary_status(status)) } else { (code, status) };
            Reply::new(code, status, format!("Domain Security for {domain}: {problem}"))
        };
        let Some(tls) = &self.tls else {
            self.log.record(Event::Information, domain.as_str(), "Domain Security: STARTTLS not used");
            return Err(refuse(530, "5.7.10", "starttls-not-used", "STARTTLS not used".to_owned()));
        };
        if tls.peer_certificates.is_empty() {
            self.log.record(Event::Information, domain.as_str(), "Domain Security: no client certificate presented");
            return Err(refuse(550, "5.7.1", "no-certificate", "no client certificate presented".to_owned()));
        }
        let role = security.client_role();
        match security.check(&self.context.config, &tls.peer_certificates, role, domain.as_str()).await {
            Ok(peer) => {
                self.log.record(Event::Information, &format!("{domain}; cert={}", peer.sha256), "Domain Secured");
                Ok(Secured { entry: entry.clone(), domain: domain.to_string(), certificate_sha256: peer.sha256 })
            }
            Err(failure) if failure.is_transient() => {
                // The detail (URLs, addresses, HTTP status) is for our logs only.
                info!(%domain, %failure, "Domain Security: transient failure");
                security.counters.inbound_refusal(entry, failure.kind());
                self.log.record(Event::Information, &failure.to_string(), "Domain Security: transient failure");
                Err(Reply::new(
                    451,
                    "4.7.5",
                    format!(
                        "Domain Security for {domain}: the client certificate's revocation status cannot be \
                         checked now; try again later"
                    ),
                ))
            }
            Err(failure) => {
                self.log.record(Event::Information, &failure.to_string(), "Domain Security: refused");
                let problem = match &failure {
                    PeerFailure::Revoked => "client certificate revoked".to_owned(),
                    PeerFailure::NameMismatch { .. } | PeerFailure::NameConstrained { .. } => {
                        format!("client certificate {failure}")
                    }
                    other => format!("client certificate not trusted: {other}"),
                };
                Err(refuse(550, "5.7.5", failure.kind(), problem))
            }
        }
    }
}

/// The 4xx twin of a 5xx enhanced status (for `temporary_refusals`).
pub(super) fn temporary_status(status: &'static str) -> &'static str {
    match status {
        "5.7.10" => "4.7.10",
        "5.7.1" => "4.7.1",
        _ => "4.7.5",
    }
}
