//! Inbound Domain Security at `MAIL FROM`: whether the sender's domain requires
//! it (decided by [`policy::inbound_requirement`]), and the partner's certificate
//! check with the refusal that names the problem.

use domainsec_model::{Domain, DomainPattern};
use tracing::info;

use super::{Secured, Session};
use crate::{
    domain_security::{
        policy::{self, InboundRequirement},
        refusal::{Direction, SecurityFailure},
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
        self.log.record(Event::Information, &entry.to_string(), "Domain Security: malformed sender domain");
        self.refusal(entry, SecurityFailure::MalformedSender, &entry.to_string())
    }

    /// The paper's inbound rule: TLS, a client certificate, a trusted chain, not
    /// revoked, a name matching the sender's domain. The refusal names the problem;
    /// counters go under the list `entry` that asked for it.
    pub(super) async fn verify_partner(&mut self, entry: &DomainPattern, domain: &Domain) -> Result<Secured, Reply> {
        let security = self.context.security.clone();
        let Some(tls) = &self.tls else {
            self.log.record(Event::Information, domain.as_str(), "Domain Security: STARTTLS not used");
            return Err(self.refusal(entry, SecurityFailure::StartTlsNotUsed, domain.as_str()));
        };
        if tls.peer_certificates.is_empty() {
            self.log.record(Event::Information, domain.as_str(), "Domain Security: no client certificate presented");
            return Err(self.refusal(entry, SecurityFailure::NoClientCertificate, domain.as_str()));
        }
        let role = security.client_role();
        security.observe(entry, &tls.peer_certificates);
        match security.check(&self.context.config, &tls.peer_certificates, role, domain.as_str()).await {
            Ok(peer) => {
                self.log.record(Event::Information, &format!("{domain}; cert={}", peer.sha256), "Domain Secured");
                Ok(Secured { entry: entry.clone(), domain: domain.to_string(), certificate_sha256: peer.sha256 })
            }
            Err(failure) => {
                // The detail goes to our logs; the reply says only what the peer may know.
                let context = if failure.is_transient() { "transient failure" } else { "refused" };
                info!(%domain, %failure, "Domain Security: {context}");
                self.log.record(Event::Information, &failure.to_string(), &format!("Domain Security: {context}"));
                Err(self.refusal(entry, SecurityFailure::Peer(failure), domain.as_str()))
            }
        }
    }

    /// Counts `failure` under `entry` and answers with its reply.
    fn refusal(&self, entry: &DomainPattern, failure: SecurityFailure, shown: &str) -> Reply {
        let security = &self.context.security;
        security.counters.inbound_refusal(entry, failure.kind());
        failure.reply(Direction::Inbound, security.settings.temporary_refusals, shown)
    }
}
