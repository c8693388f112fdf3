//! Inbound Domain Security at `MAIL FROM`: whether the sender's domain requires
//! it, and the partner's certificate check with the refusal that names the problem.

use super::{Secured, Session};
use crate::{
    domain_security::peer::PeerFailure,
    protocol_log::Event,
    smtp::{address::Mailbox, reply::Reply},
};
use domainsec_model::Domain;

impl Session {
    /// The sender's domain when this connector enforces Domain Security and the
    /// domain is on the receive secure list (subdomains only where the list says so).
    pub(super) fn secure_domain(&self, from: Option<&Mailbox>) -> Option<String> {
        if !self.context.connector.domain_secure_enabled {
            return None;
        }
        let domain = Domain::parse(from?.domain()).ok()?;
        self.context.config.transport.requires_secure_receive(&domain).then(|| domain.to_string())
    }

    /// The paper's inbound rule: TLS, a client certificate, a trusted chain, not
    /// revoked, a name matching the sender's domain. The refusal names the problem.
    pub(super) async fn verify_partner(&mut self, domain: &str) -> Result<Secured, Reply> {
        let security = self.context.security.clone();
        let temporary = security.settings.temporary_refusals;
        let refuse = |code: u16, status: &'static str, kind: &'static str, problem: String| {
            security.counters.inbound_refusal(domain, kind);
            let (code, status) = if temporary { (450, temporary_status(status)) } else { (code, status) };
            Reply::new(code, status, format!("Domain Security for {domain}: {problem}"))
        };
        let Some(tls) = &self.tls else {
            self.log.record(Event::Information, domain, "Domain Security: STARTTLS not used");
            return Err(refuse(530, "5.7.10", "starttls-not-used", "STARTTLS not used".to_owned()));
        };
        if tls.peer_certificates.is_empty() {
            self.log.record(Event::Information, domain, "Domain Security: no client certificate presented");
            return Err(refuse(550, "5.7.1", "no-certificate", "no client certificate presented".to_owned()));
        }
        let role = security.client_role();
        match security.check(&self.context.config, &tls.peer_certificates, role, domain).await {
            Ok(peer) => {
                self.log.record(Event::Information, &format!("{domain}; cert={}", peer.sha256), "Domain Secured");
                Ok(Secured { domain: domain.to_owned(), certificate_sha256: peer.sha256 })
            }
            Err(failure) if failure.is_transient() => {
                security.counters.inbound_refusal(domain, failure.kind());
                self.log.record(Event::Information, &failure.to_string(), "Domain Security: transient failure");
                Err(Reply::new(
                    451,
                    "4.7.5",
                    format!("Domain Security for {domain}: client certificate {failure}; try again later"),
                ))
            }
            Err(failure) => {
                self.log.record(Event::Information, &failure.to_string(), "Domain Security: refused");
                let problem = match &failure {
                    PeerFailure::Revoked => "client certificate revoked".to_owned(),
                    PeerFailure::NameMismatch { .. } => format!("client certificate {failure}"),
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
