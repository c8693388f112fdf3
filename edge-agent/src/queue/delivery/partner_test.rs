//! `dsctl partner test DOMAIN`: before a domain goes on `TLSSendDomainSecureList`,
//! the steps a Domain Secured delivery would take to it — route, next hops,
//! connect, EHLO, STARTTLS with this edge's certificate, the partner's certificate
//! checked exactly as a delivery checks it (chain, dates, key usage, CRLs, the
//! paper's name rule against the domain) — then `QUIT`. No message is sent. The
//! same functions as [`Delivery::deliver`]: routing, next-hop lookup, the SMTP
//! client, the peer check and the refusal texts.

use std::sync::Arc;

use domainsec_model::Domain;
use proto::edge as pb;

use super::Delivery;
use crate::{
    apply::EdgeConfig,
    domain_security::{peer::PeerRole, refusal::SecurityFailure},
    outbound::{AttemptError, ClientTimeouts, OutboundSession},
    protocol_log::SessionLog,
    routing::{Route, route},
    x509,
};

impl Delivery {
    /// Tests `domain` as a Domain Security partner from this edge, with the queue's
    /// timeouts and its per-destination connection limit.
    pub async fn test_partner(
        &self,
        config: &EdgeConfig,
        settings: &crate::config::QueueSettings,
        domain: &str,
    ) -> pb::PartnerTestReport {
        let mut report = pb::PartnerTestReport { domain: domain.to_owned(), ..Default::default() };
        let Ok(domain) = Domain::parse(domain) else {
            report.reply = format!("domain {domain:?} is not a valid domain name");
            return report;
        };
        let connector = match route(config, &domain) {
            Route::Connector(connector) => connector,
            Route::Local => {
                report.reply =
                    format!("{domain} is one of this organization's accepted domains: mail to it stays here");
                return report;
            }
            Route::Unroutable => {
                report.reply = format!("550 5.4.4 no send connector of this edge covers {domain}");
                return report;
            }
        };
        let listed = config.transport.secure_send_entry(domain.as_str()).map(ToString::to_string);
        report.steps.push(format!("send connector {} ({})", connector.name, connector.routing));
        report.steps.push(match (&listed, connector.domain_secure_enabled) {
            (Some(entry), true) => format!("TLSSendDomainSecureList entry {entry}: deliveries require Domain Security now"),
            (Some(entry), false) => format!(
                "TLSSendDomainSecureList entry {entry}, but the connector has Domain Security off: deliveries use opportunistic TLS"
            ),
            (None, _) => format!("{domain} is not on TLSSendDomainSecureList yet: tested as if it were"),
        });
        if let Some((source, detail)) = self.describe_tls_policy(config, &domain).await {
            report.steps.push(format!("deliveries now follow {source} ({detail})"));
        }
        let destination = format!("{}:{}", connector.name, domain);
        let hops = match self.next_hops(connector, domain.as_str()).await {
            Ok(hops) => hops,
            Err(error) => {
                report.reply = format!("451 {} {error}", error.enhanced_status());
                return report;
            }
        };
        let _permit =
            self.destination_limit(&destination, settings.max_connections_per_destination).acquire_owned().await;
        let ehlo = connector.fqdn.as_ref().unwrap_or(&config.fqdn).to_string();
        let certificate = self.credentials.certificate_for(&ehlo);
        report.steps.push(match &certificate {
            Some(certificate) => {
                format!("this edge presents {} ({})", certificate.thumbprint, certificate.names.join(", "))
            }
            None => "this edge has no SMTP certificate to present: a partner asking for one refuses us".to_owned(),
        });
        // The connector's timeouts, capped so a silent host cannot hold the test past
        // the controller's wait.
        let command = settings.command_timeout.min(PROBE_STEP_TIMEOUT);
        let timeouts = ClientTimeouts { command, data: settings.data_timeout.min(PROBE_STEP_TIMEOUT) };
        let mut last_error = String::from("no next hop answered");
        for hop in &hops {
            for &address in &hop.addresses {
                let mut host = pb::PartnerHost {
                    host: hop.host.clone(),
                    preference: u32::from(hop.preference),
                    address: address.to_string(),
                    ..Default::default()
                };
                let probe = Probe { config, timeouts, ehlo: &ehlo, domain: &domain };
                match self.probe(&probe, &hop.host, address, certificate.clone().map(|c| c.certified), &mut host).await
                {
                    Ok(()) => host.passed = true,
                    Err(error) => {
                        host.reply = format!("451 {} {} [{address}]: {error}", error.status(), hop.host);
                        last_error.clone_from(&host.reply);
                    }
                }
                report.hosts.push(host);
            }
        }
        report.passed = report.hosts.iter().any(|host| host.passed);
        report.reply = match report.hosts.iter().find(|host| host.passed) {
            Some(host) => format!("a delivery would go to {} [{}], Domain Secured", host.host, host.address),
            None => last_error,
        };
        report
    }

    /// `--inbound`: a certificate chain the partner sent, checked as the receive
    /// side checks a client certificate for mail from `domain`.
    pub async fn test_inbound_certificate(
        &self,
        config: &EdgeConfig,
        chain: &[Vec<u8>],
        domain: &str,
    ) -> pb::PartnerTestReport {
        let mut report = pb::PartnerTestReport { domain: domain.to_owned(), ..Default::default() };
        let entry = config.transport.secure_receive_entry(domain).map(ToString::to_string);
        report.steps.push(match entry {
            Some(entry) => {
                format!("TLSReceiveDomainSecureList entry {entry}: mail from {domain} requires Domain Security now")
            }
            None => format!("{domain} is not on TLSReceiveDomainSecureList yet: checked as if it were"),
        });
        let Some(leaf) = chain.first() else {
            report.reply = "no certificate given".to_owned();
            return report;
        };
        report.steps.push(describe(leaf));
        let before = self.security.crls.stats();
        let checked = self.security.check(config, chain, self.security.client_role(), domain).await;
        report.steps.push(crl_words(&before, &self.security.crls.stats()));
        match checked {
            Ok(peer) => {
                report.passed = true;
                report.steps.push(format!(
                    "chain to a trusted root, dates, key usage, revocation and the name rule for {domain}: passed (sha256 {})",
                    peer.sha256
                ));
                report.reply = format!("mail from {domain} presenting this certificate would be Domain Secured");
            }
            Err(failure) => {
                report.steps.push(format!("certificate check for {domain}: {failure}"));
                let failure = SecurityFailure::Peer(failure);
                let temporary = self.security.settings.temporary_refusals;
                report.reply =
                    failure.reply(crate::domain_security::refusal::Direction::Inbound, temporary, domain).summary();
            }
        }
        report
    }

    /// One address: the session up to the certificate check, then `QUIT`.
    async fn probe(
        &self,
        probe: &Probe<'_>,
        host_name: &str,
        address: std::net::SocketAddr,
        client_certificate: Option<Arc<rustls::sign::CertifiedKey>>,
        host: &mut pb::PartnerHost,
    ) -> Result<(), AttemptError> {
        let session = OutboundSession::open(
            address,
            host_name,
            probe.ehlo,
            client_certificate,
            true,
            probe.timeouts,
            SessionLog::disabled(),
        )
        .await;
        let session = match session {
            Ok(session) => session,
            Err(error) => {
                host.steps.push(match &error {
                    AttemptError::Transport(reason) => format!("connect, EHLO or TLS handshake: {reason}"),
                    AttemptError::Refused(reply) => format!("refused: {reply}"),
                    AttemptError::DomainSecurity(failure) => format!("Domain Security: {failure}"),
                });
                host.failure = failure_kind(&error).to_owned();
                return Err(error);
            }
        };
        host.steps.push(format!("connected to {}, EHLO {}", session.address, probe.ehlo));
        let chain = session.tls.as_ref().map(|tls| tls.peer_certificates.clone()).unwrap_or_default();
        if let Some(tls) = &session.tls {
            host.steps.push(format!("STARTTLS: {} {}", tls.protocol, tls.cipher));
        }
        if let Some(leaf) = chain.first() {
            host.steps.push(describe(leaf));
        }
        let before = self.security.crls.stats();
        let checked = self.security.check(probe.config, &chain, PeerRole::Server, probe.domain.as_str()).await;
        let after = self.security.crls.stats();
        host.steps.push(crl_words(&before, &after));
        let result = match checked {
            Ok(peer) => {
                host.steps.push(format!(
                    "chain to a trusted root, dates, key usage, revocation and the name rule for {}: passed (sha256 {})",
                    probe.domain, peer.sha256
                ));
                Ok(())
            }
            Err(failure) => {
                host.steps.push(format!("certificate check for {}: {failure}", probe.domain));
                let error = AttemptError::DomainSecurity(SecurityFailure::Peer(failure));
                host.failure = failure_kind(&error).to_owned();
                Err(error)
            }
        };
        session.quit().await;
        host.steps.push("QUIT (no message sent)".to_owned());
        result
    }
}

/// The longest one step (connect, one reply, the handshake) may take in a test.
const PROBE_STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What one probe needs besides the address.
struct Probe<'a> {
    config: &'a EdgeConfig,
    timeouts: ClientTimeouts,
    ehlo: &'a str,
    domain: &'a Domain,
}

/// The reason word the counters use, or `transport` / `refused`.
fn failure_kind(error: &AttemptError) -> &'static str {
    match error {
        AttemptError::DomainSecurity(failure) => failure.kind(),
        AttemptError::Transport(_) => "transport",
        AttemptError::Refused(_) => "refused",
    }
}

/// The partner's leaf in one line: subject, issuer, names, not after.
fn describe(leaf: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, certificate)) => format!(
            "partner certificate: subject {}, issuer {}, names {}, not after {}, thumbprint {}",
            certificate.subject(),
            certificate.issuer(),
            x509::dns_names(&certificate).join(", "),
            certificate.validity().not_after,
            x509::thumbprint(leaf),
        ),
        Err(error) => format!("partner certificate: not readable ({error})"),
    }
}

fn crl_words(
    before: &crate::domain_security::revocation::RevocationStats,
    after: &crate::domain_security::revocation::RevocationStats,
) -> String {
    let fetched = after.fetches.saturating_sub(before.fetches);
    let cached = after.cache_hits.saturating_sub(before.cache_hits);
    let failed = after.fetch_failures.saturating_sub(before.fetch_failures);
    match (fetched, cached, failed) {
        (0, 0, 0) => "CRLs: none consulted".to_owned(),
        _ => format!("CRLs: {fetched} fetched, {cached} from the cache, {failed} failed"),
    }
}
