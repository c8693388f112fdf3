//! Every way Domain Security can fail a transaction or a session, and the one
//! place each gets its SMTP code, enhanced status, counter reason and text.
//!
//! The inbound session answers the peer with [`SecurityFailure::reply`]; the
//! outbound client keeps the message queued under the same reply's status. No
//! other code picks a Domain Security status.

use super::peer::PeerFailure;
use crate::smtp::reply::Reply;

/// Which side of the session we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A partner connected to us: the reply goes to the peer.
    Inbound,
    /// We connected to a partner: the reply is what the queue records.
    Outbound,
}

/// Why Domain Security did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityFailure {
    /// Inbound: mail from a listed domain over plain text.
    #[error("STARTTLS not used")]
    StartTlsNotUsed,
    /// Inbound: TLS, but no client certificate.
    #[error("no client certificate presented")]
    NoClientCertificate,
    /// Inbound: a sender domain that is not a valid name under a list entry.
    #[error("the sender's domain is not a valid domain name")]
    MalformedSender,
    /// Outbound: the server does not offer STARTTLS.
    #[error("STARTTLS not offered by the server")]
    StartTlsNotOffered,
    /// Outbound: the server answered STARTTLS with this failure reply.
    #[error("STARTTLS refused: {0}")]
    StartTlsRefused(String),
    /// Outbound: the TLS handshake failed.
    #[error("{0}")]
    Handshake(String),
    /// The peer's certificate did not pass (either direction).
    #[error("{0}")]
    Peer(PeerFailure),
    /// Outbound under DANE or MTA-STS (not Domain Security): what the recipient
    /// domain's published policy refused.
    #[error("{reason}")]
    Published {
        /// "DANE: no TLSA record matched …", "MTA-STS: …".
        reason: String,
        /// The counter reason: `dane.no-match`, `mta-sts.certificate`, ….
        kind: &'static str,
    },
}

impl SecurityFailure {
    /// The counter's failure reason (`starttls-not-used`, `revoked`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::StartTlsNotUsed => "starttls-not-used",
            Self::NoClientCertificate => "no-certificate",
            Self::MalformedSender => "malformed-domain",
            Self::StartTlsNotOffered => "starttls-not-offered",
            Self::StartTlsRefused(_) => "starttls-refused",
            Self::Handshake(_) => "handshake",
            Self::Peer(failure) => failure.kind(),
            Self::Published { kind, .. } => kind,
        }
    }

    /// The reply for this failure concerning `domain` (a list entry or a domain).
    /// `temporary` (the `temporary_refusals` setting) turns inbound permanent
    /// refusals into their 4xx twins; outbound failures are always temporary, so
    /// the message stays queued and is never sent without Domain Security.
    pub fn reply(&self, direction: Direction, temporary: bool, domain: &str) -> Reply {
        match direction {
            Direction::Inbound => self.inbound_reply(temporary, domain),
            Direction::Outbound => self.outbound_reply(),
        }
    }

    fn inbound_reply(&self, temporary: bool, domain: &str) -> Reply {
        let (code, status, problem) = match self {
            Self::StartTlsNotUsed => (530, "5.7.10", self.to_string()),
            Self::NoClientCertificate => (550, "5.7.1", self.to_string()),
            Self::MalformedSender => return Reply::new(550, "5.1.8", format!("Domain Security for {domain}: {self}")),
            Self::Peer(failure) if failure.is_transient() => {
                // The detail (URLs, addresses, HTTP status) is for our logs only.
                return Reply::new(
                    451,
                    "4.7.5",
                    format!(
                        "Domain Security for {domain}: the client certificate's revocation status cannot be \
                         checked now; try again later"
                    ),
                );
            }
            Self::Peer(PeerFailure::Revoked) => (550, "5.7.5", "client certificate revoked".to_owned()),
            Self::Peer(failure @ (PeerFailure::NameMismatch { .. } | PeerFailure::NameConstrained { .. })) => {
                (550, "5.7.5", format!("client certificate {failure}"))
            }
            Self::Peer(failure) => (550, "5.7.5", format!("client certificate not trusted: {failure}")),
            Self::StartTlsNotOffered | Self::StartTlsRefused(_) | Self::Handshake(_) | Self::Published { .. } => {
                (550, "5.7.5", self.to_string())
            }
        };
        let (code, status) = if temporary { (450, temporary_status(status)) } else { (code, status) };
        Reply::new(code, status, format!("Domain Security for {domain}: {problem}"))
    }

    /// The enhanced status an outbound failure keeps the message queued under:
    /// `4.7.4` without STARTTLS, `4.7.5` for TLS or the certificate.
    pub fn outbound_status(&self) -> &'static str {
        match self {
            Self::StartTlsNotOffered | Self::StartTlsRefused(_) => "4.7.4",
            _ => "4.7.5",
        }
    }

    fn outbound_reply(&self) -> Reply {
        let text = match self {
            Self::Peer(failure) => format!("Server certificate not verified: {failure}"),
            other => other.to_string(),
        };
        Reply::new(451, self.outbound_status(), text)
    }
}

/// The 4xx twin of a 5xx enhanced status (for `temporary_refusals`).
fn temporary_status(status: &'static str) -> &'static str {
    match status {
        "5.7.10" => "4.7.10",
        "5.7.1" => "4.7.1",
        _ => "4.7.5",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "woodgrovebank.com";

    fn inbound(failure: SecurityFailure, temporary: bool) -> String {
        failure.reply(Direction::Inbound, temporary, DOMAIN).summary()
    }

    fn outbound(failure: SecurityFailure) -> String {
        failure.reply(Direction::Outbound, false, DOMAIN).summary()
    }

    #[test]
    fn inbound_refusals_carry_the_papers_codes() {
        let cases = [
            (SecurityFailure::StartTlsNotUsed, "530 5.7.10 Domain Security for woodgrovebank.com: STARTTLS not used"),
            (
                SecurityFailure::NoClientCertificate,
                "550 5.7.1 Domain Security for woodgrovebank.com: no client certificate presented",
            ),
            (
                SecurityFailure::MalformedSender,
                "550 5.1.8 Domain Security for woodgrovebank.com: the sender's domain is not a valid domain name",
            ),
            (
                SecurityFailure::Peer(PeerFailure::Revoked),
                "550 5.7.5 Domain Security for woodgrovebank.com: client certificate revoked",
            ),
            (
                SecurityFailure::Peer(PeerFailure::Untrusted("unknown issuer".into())),
                "550 5.7.5 Domain Security for woodgrovebank.com: client certificate not trusted: certificate not trusted: unknown issuer",
            ),
        ];
        for (failure, expected) in cases {
            assert_eq!(inbound(failure, false), expected);
        }
    }

    #[test]
    fn temporary_refusals_turn_5xx_into_their_4xx_twins() {
        assert!(inbound(SecurityFailure::StartTlsNotUsed, true).starts_with("450 4.7.10 "));
        assert!(inbound(SecurityFailure::NoClientCertificate, true).starts_with("450 4.7.1 "));
        assert!(inbound(SecurityFailure::Peer(PeerFailure::Revoked), true).starts_with("450 4.7.5 "));
        assert!(
            inbound(SecurityFailure::MalformedSender, true).starts_with("550 5.1.8 "),
            "not a Domain Security verdict"
        );
    }

    #[test]
    fn a_transient_inbound_failure_is_451_and_names_nothing_internal() {
        let failure = PeerFailure::RevocationUnavailable("http://10.0.0.7/ca.crl: connection refused".into());
        let reply = inbound(SecurityFailure::Peer(failure), false);
        assert!(reply.starts_with("451 4.7.5 ") && reply.contains("cannot be checked now"), "{reply}");
        assert!(!reply.contains("10.0.0.7") && !reply.contains("refused"), "{reply}");
    }

    #[test]
    fn outbound_failures_keep_the_message_queued_under_4_7_4_or_4_7_5() {
        assert_eq!(outbound(SecurityFailure::StartTlsNotOffered), "451 4.7.4 STARTTLS not offered by the server");
        assert!(outbound(SecurityFailure::StartTlsRefused("454 no".into())).starts_with("451 4.7.4 STARTTLS refused"));
        assert!(outbound(SecurityFailure::Handshake("alert".into())).starts_with("451 4.7.5 "));
        assert_eq!(
            outbound(SecurityFailure::Peer(PeerFailure::Revoked)),
            "451 4.7.5 Server certificate not verified: certificate revoked"
        );
    }
}
