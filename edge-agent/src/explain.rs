//! `dsctl policy explain`: what this edge would do with mail from one address to
//! another, and why, decided by the very functions the relay calls — receive
//! connector selection ([`inbound::select_connector`]), the inbound and outbound
//! Domain Security rules and the permission checks ([`policy`]), routing
//! ([`routing::route`]), the SMTP certificate choice ([`smtp::choose`]) and the
//! refusal texts ([`SecurityFailure::reply`]) — so an explanation and the relay
//! cannot disagree. Pure evaluation of a configuration: no network, no DNS.

use std::{
    net::{IpAddr, SocketAddr},
    time::SystemTime,
};

use domainsec_model::{Domain, ReceiveConnector};
use proto::edge as pb;

use crate::{
    apply::EdgeConfig,
    certificates::smtp::{self, SmtpCertificate},
    domain_security::{
        policy::{self, InboundRequirement, OutboundRequirement, RelayPermission},
        refusal::{Direction, SecurityFailure},
    },
    inbound,
    routing::{self, Route},
    smtp::{command::Command, reply::Reply},
};

/// The question: mail from `from` (`None`: the null sender `<>`) to `to`, from a
/// client at `client` connecting to `binding` (every binding of the edge when `None`).
#[derive(Debug, Clone)]
pub struct Question {
    /// The envelope sender's address, `None` for `<>`.
    pub from: Option<String>,
    /// The envelope recipient's address.
    pub to: String,
    /// The client's address.
    pub client: IpAddr,
    /// The local address the client connects to.
    pub binding: Option<SocketAddr>,
}

/// What the SMTP session would answer, up to `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `250` to `MAIL FROM` and `RCPT TO`.
    Accepted {
        /// The transaction is Domain Secured (inbound).
        domain_secured: bool,
    },
    /// Refused at `stage` (`MAIL` or `RCPT`) with `reply`.
    Refused {
        /// The command refused.
        stage: &'static str,
        /// The reply line, e.g. `550 5.7.1 <x@y> Unable to relay`.
        reply: String,
    },
}

/// The inbound half: which connector takes the client and what it answers.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The receive connector and the binding it was chosen on.
    pub connector: String,
    /// The binding.
    pub binding: SocketAddr,
    /// The Domain Security rule for the sender.
    pub requirement: InboundRequirement,
    /// Why the rule does not apply, when it does not.
    pub not_required_because: Option<&'static str>,
    /// The answer to a sender over plain text (no STARTTLS, so no client certificate).
    pub plain_text: Outcome,
    /// The answer to a sender presenting a certificate that passes every check.
    pub with_partner_certificate: Outcome,
    /// The permission group that lets a verified partner (or anyone) submit.
    pub permission: Option<String>,
    /// Why the recipient may be taken (or not).
    pub relay: RelayPermission,
    /// The certificate this connector presents in STARTTLS.
    pub certificate: Option<Presented>,
}

/// A certificate the edge would present, and for which name it was chosen.
#[derive(Debug, Clone)]
pub struct Presented {
    /// Its SHA-1 thumbprint.
    pub thumbprint: String,
    /// Its DNS names.
    pub names: Vec<String>,
    /// The FQDN it was chosen for (connector FQDN or the edge's).
    pub chosen_for: String,
}

/// The outbound half: route, connector and Domain Security.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Where the recipient's mail goes.
    pub route: RouteKind,
    /// The outbound Domain Security rule.
    pub requirement: OutboundRequirement,
    /// Why the rule does not apply, when it does not.
    pub not_required_because: Option<&'static str>,
    /// The certificate the edge presents to the next hop (its client certificate).
    pub certificate: Option<Presented>,
}

/// [`Route`] with names, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKind {
    /// The local maildir (an accepted domain).
    Local,
    /// A send connector and how it routes.
    Connector {
        /// The connector's name.
        name: String,
        /// `DNS MX lookup` or `smart hosts: a, b`.
        routing: String,
    },
    /// No connector covers the domain: `5.4.4`.
    Unroutable,
}

/// The whole answer.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The configuration version evaluated.
    pub version: u64,
    /// One per binding the client could connect to (empty: no connector takes it).
    pub inbound: Vec<Inbound>,
    /// `None` when the recipient's domain is not a valid domain name.
    pub outbound: Option<Outbound>,
}

/// Why a question cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuestionError {
    /// An address without `@domain`.
    #[error("{field} {value:?}: not an address (local@domain)")]
    NotAnAddress { field: &'static str, value: String },
    /// The client address does not parse.
    #[error("client_ip {0:?}: not an IP address")]
    ClientIp(String),
    /// The binding does not parse.
    #[error("binding {0:?}: not ip:port")]
    Binding(String),
}

/// Explains `question` against `config`, with the edge's SMTP certificates and
/// its `temporary_refusals` setting (the refusal texts depend on it).
pub fn explain(
    config: &EdgeConfig,
    certificates: &[SmtpCertificate],
    temporary_refusals: bool,
    question: &Question,
) -> Explanation {
    let envelope = Envelope::parse(question);
    let bindings: Vec<SocketAddr> = match question.binding {
        Some(binding) => vec![binding],
        None => {
            let mut all: Vec<SocketAddr> =
                config.receive_connectors.iter().flat_map(|c| c.bindings.iter().map(|b| b.socket_addr())).collect();
            all.sort();
            all.dedup();
            all
        }
    };
    let inbound = bindings
        .into_iter()
        .filter_map(|binding| {
            let connector = inbound::select_connector(&config.receive_connectors, binding, question.client)?;
            let context = InboundContext { config, connector, certificates, temporary_refusals };
            Some(context.explain(binding, &envelope))
        })
        .collect();
    let outbound = envelope
        .recipient_domain()
        .and_then(|domain| Domain::parse(domain).ok())
        .map(|domain| outbound(config, certificates, &domain));
    Explanation { version: config.version, inbound, outbound }
}

/// The envelope as the session would read it: `MAIL FROM:<from>` and `RCPT TO:<to>`
/// through the SMTP command parser, so an address the relay answers `501` is
/// explained as `501` too.
struct Envelope {
    /// The sender's domain (`None` for `<>`), or the reply to a `MAIL FROM` that does not parse.
    mail: Result<Option<String>, Reply>,
    /// The recipient's domain, or the reply to an `RCPT TO` that does not parse.
    rcpt: Result<String, Reply>,
    /// The recipient as shown in a relay refusal.
    to: String,
}

impl Envelope {
    fn parse(question: &Question) -> Self {
        let from = question.from.as_deref().unwrap_or_default();
        let mail = match Command::parse(format!("MAIL FROM:<{from}>").as_bytes()) {
            Ok(Command::Mail { from, .. }) => Ok(from.map(|mailbox| mailbox.domain().to_owned())),
            Ok(_) => Err(Reply::new(500, "5.5.1", "Command unrecognized")),
            Err(error) => Err(error.reply()),
        };
        let rcpt = match Command::parse(format!("RCPT TO:<{}>", question.to).as_bytes()) {
            Ok(Command::Rcpt { to }) => Ok(to.domain().to_owned()),
            Ok(_) => Err(Reply::new(500, "5.5.1", "Command unrecognized")),
            Err(error) => Err(error.reply()),
        };
        let to = match Command::parse(format!("RCPT TO:<{}>", question.to).as_bytes()) {
            Ok(Command::Rcpt { to }) => to.to_string(),
            _ => question.to.clone(),
        };
        Self { mail, rcpt, to }
    }

    fn recipient_domain(&self) -> Option<&str> {
        self.rcpt.as_deref().ok()
    }
}

/// Parses the wire form of a question (the task the controller forwards).
pub fn question(request: &pb::PolicyQuestion) -> Result<Question, QuestionError> {
    let address = |field: &'static str, value: &str| -> Result<String, QuestionError> {
        match value.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(value.to_owned()),
            _ => Err(QuestionError::NotAnAddress { field, value: value.to_owned() }),
        }
    };
    let from = match request.from.as_str() {
        "" | "<>" => None,
        from => Some(address("from", from)?),
    };
    let to = address("to", &request.to)?;
    let client = match request.client_ip.as_str() {
        "" => IpAddr::from(DEFAULT_CLIENT),
        ip => ip.parse().map_err(|_| QuestionError::ClientIp(ip.to_owned()))?,
    };
    let binding = match request.binding.as_str() {
        "" => None,
        binding => Some(binding.parse().map_err(|_| QuestionError::Binding(binding.to_owned()))?),
    };
    Ok(Question { from, to, client, binding })
}

/// An internet client when none is named: TEST-NET-3 (RFC 5737), inside no
/// organization's remote IP ranges.
pub const DEFAULT_CLIENT: [u8; 4] = [203, 0, 113, 7];

struct InboundContext<'a> {
    config: &'a EdgeConfig,
    connector: &'a ReceiveConnector,
    certificates: &'a [SmtpCertificate],
    temporary_refusals: bool,
}

impl InboundContext<'_> {
    fn explain(&self, binding: SocketAddr, envelope: &Envelope) -> Inbound {
        let fqdn = self.connector.fqdn.as_ref().unwrap_or(&self.config.fqdn).to_string();
        let certificate = presented(self.certificates, &fqdn);
        let sender_domain = match &envelope.mail {
            Ok(domain) => domain.as_deref(),
            Err(reply) => {
                // The relay answers the syntax error before any rule.
                let refused = Outcome::Refused { stage: "MAIL", reply: reply.summary() };
                return Inbound {
                    connector: self.connector.name.to_string(),
                    binding,
                    requirement: InboundRequirement::NotRequired,
                    not_required_because: Some("the sender's address does not parse"),
                    plain_text: refused.clone(),
                    with_partner_certificate: refused,
                    permission: None,
                    relay: RelayPermission::Refused,
                    certificate,
                };
            }
        };
        let requirement = policy::inbound_requirement(self.config, self.connector, sender_domain);
        let not_required_because = match (&requirement, sender_domain) {
            (InboundRequirement::NotRequired, _) if !self.connector.domain_secure_enabled => {
                Some("the receive connector does not have Domain Security enabled")
            }
            (InboundRequirement::NotRequired, None) => Some("the null sender <> names no domain"),
            (InboundRequirement::NotRequired, Some(_)) => {
                Some("no entry of TLSReceiveDomainSecureList covers the sender's domain")
            }
            _ => None,
        };
        let relay = match &envelope.rcpt {
            Ok(domain) => policy::relay_permission(self.config, self.connector, domain),
            Err(_) => RelayPermission::Refused,
        };
        let (plain_text, with_partner_certificate) = match &requirement {
            InboundRequirement::NotRequired => {
                let outcome = self.after_mail(false, &relay, envelope);
                (outcome.clone(), outcome)
            }
            InboundRequirement::Malformed { entry } => {
                let refusal = self.refusal(&SecurityFailure::MalformedSender, &entry.to_string());
                (refusal.clone(), refusal)
            }
            InboundRequirement::Required { domain, .. } => (
                self.refusal(&SecurityFailure::StartTlsNotUsed, domain.as_str()),
                self.after_mail(true, &relay, envelope),
            ),
        };
        let secured = matches!(requirement, InboundRequirement::Required { .. });
        Inbound {
            connector: self.connector.name.to_string(),
            binding,
            permission: policy::submit_permission(self.connector, secured).map(|group| group.to_string()),
            requirement,
            not_required_because,
            plain_text,
            with_partner_certificate,
            relay,
            certificate,
        }
    }

    /// `MAIL` passed the Domain Security rule: the permission and relay checks.
    fn after_mail(&self, domain_secured: bool, relay: &RelayPermission, envelope: &Envelope) -> Outcome {
        if policy::submit_permission(self.connector, domain_secured).is_none() {
            let reply =
                Reply::new(530, "5.7.1", "Client was not authenticated; this connector accepts no anonymous mail");
            return Outcome::Refused { stage: "MAIL", reply: reply.summary() };
        }
        let to = match &envelope.rcpt {
            Ok(_) => envelope.to.as_str(),
            Err(reply) => return Outcome::Refused { stage: "RCPT", reply: reply.summary() },
        };
        if *relay == RelayPermission::Refused {
            let reply = Reply::new(550, "5.7.1", format!("<{to}> Unable to relay"));
            return Outcome::Refused { stage: "RCPT", reply: reply.summary() };
        }
        Outcome::Accepted { domain_secured }
    }

    fn refusal(&self, failure: &SecurityFailure, shown: &str) -> Outcome {
        let reply = failure.reply(Direction::Inbound, self.temporary_refusals, shown);
        Outcome::Refused { stage: "MAIL", reply: reply.summary() }
    }
}

fn outbound(config: &EdgeConfig, certificates: &[SmtpCertificate], domain: &Domain) -> Outbound {
    let (route, connector) = match routing::route(config, domain) {
        Route::Local => (RouteKind::Local, None),
        Route::Unroutable => (RouteKind::Unroutable, None),
        Route::Connector(connector) => {
            let routing = connector.routing.to_string();
            (RouteKind::Connector { name: connector.name.to_string(), routing }, Some(connector))
        }
    };
    let Some(connector) = connector else {
        let because = match route {
            RouteKind::Local => "the recipient is in an accepted domain: delivered locally, no send connector",
            _ => "no send connector covers the recipient's domain",
        };
        return Outbound {
            route,
            requirement: OutboundRequirement::NotRequired,
            not_required_because: Some(because),
            certificate: None,
        };
    };
    let requirement = policy::outbound_requirement(config, connector, domain.as_str());
    let not_required_because = match requirement {
        OutboundRequirement::Required { .. } => None,
        OutboundRequirement::NotRequired if !connector.domain_secure_enabled => {
            Some("the send connector does not have Domain Security enabled: opportunistic TLS")
        }
        OutboundRequirement::NotRequired => {
            Some("no entry of TLSSendDomainSecureList covers the recipient's domain: opportunistic TLS")
        }
    };
    let fqdn = connector.fqdn.as_ref().unwrap_or(&config.fqdn).to_string();
    Outbound { route, requirement, not_required_because, certificate: presented(certificates, &fqdn) }
}

fn presented(certificates: &[SmtpCertificate], fqdn: &str) -> Option<Presented> {
    smtp::choose(certificates, fqdn, SystemTime::now()).map(|chosen| Presented {
        thumbprint: chosen.thumbprint.clone(),
        names: chosen.names.clone(),
        chosen_for: fqdn.to_owned(),
    })
}

// === wire form ===

impl From<Explanation> for pb::PolicyExplanation {
    fn from(explanation: Explanation) -> Self {
        Self {
            config_version: explanation.version,
            inbound: explanation.inbound.into_iter().map(Into::into).collect(),
            outbound: explanation.outbound.map(Into::into),
        }
    }
}

impl From<Inbound> for pb::InboundExplanation {
    fn from(inbound: Inbound) -> Self {
        let (rule, entry) = match &inbound.requirement {
            InboundRequirement::NotRequired => (pb::DomainSecurityRule::NotRequired, String::new()),
            InboundRequirement::Required { entry, .. } => (pb::DomainSecurityRule::Required, entry.to_string()),
            InboundRequirement::Malformed { entry } => (pb::DomainSecurityRule::Malformed, entry.to_string()),
        };
        let (relay, relay_entry) = match &inbound.relay {
            RelayPermission::OrganizationServers => ("organization-servers", String::new()),
            RelayPermission::AcceptedDomain(accepted) => ("accepted-domain", accepted.to_string()),
            RelayPermission::Refused => ("refused", String::new()),
        };
        Self {
            connector: inbound.connector,
            binding: inbound.binding.to_string(),
            rule: rule.into(),
            entry,
            reason: inbound.not_required_because.unwrap_or_default().to_owned(),
            plain_text: Some(inbound.plain_text.into()),
            with_partner_certificate: Some(inbound.with_partner_certificate.into()),
            permission: inbound.permission.unwrap_or_default(),
            relay: relay.to_owned(),
            relay_entry,
            certificate: inbound.certificate.map(Into::into),
        }
    }
}

impl From<Outbound> for pb::OutboundExplanation {
    fn from(outbound: Outbound) -> Self {
        let (route, send_connector, routing) = match outbound.route {
            RouteKind::Local => ("local", String::new(), String::new()),
            RouteKind::Unroutable => ("unroutable", String::new(), String::new()),
            RouteKind::Connector { name, routing } => ("connector", name, routing),
        };
        let (rule, entry) = match &outbound.requirement {
            OutboundRequirement::NotRequired => (pb::DomainSecurityRule::NotRequired, String::new()),
            OutboundRequirement::Required { entry, .. } => (pb::DomainSecurityRule::Required, entry.to_string()),
        };
        Self {
            route: route.to_owned(),
            send_connector,
            routing,
            rule: rule.into(),
            entry,
            reason: outbound.not_required_because.unwrap_or_default().to_owned(),
            certificate: outbound.certificate.map(Into::into),
            // Filled in by the edge after looking the domain's records up.
            tls_policy: String::new(),
            tls_policy_detail: String::new(),
        }
    }
}

impl From<Outcome> for pb::PolicyOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Accepted { domain_secured } => Self { accepted: true, domain_secured, ..Self::default() },
            Outcome::Refused { stage, reply } => Self { stage: stage.to_owned(), reply, ..Self::default() },
        }
    }
}

impl From<Presented> for pb::PresentedCertificate {
    fn from(presented: Presented) -> Self {
        Self { thumbprint: presented.thumbprint, names: presented.names, chosen_for: presented.chosen_for }
    }
}
