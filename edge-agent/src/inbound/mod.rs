//! The inbound SMTP server: one listener per binding of the edge's receive
//! connectors, kept in step with the configuration (a change applies to new
//! sessions, no restart), the connector chosen per client by its most specific
//! remote IP range, and session caps per connector and per remote address.

pub mod budget;
pub mod connection;
pub mod session;

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use domainsec_model::{AuthMechanism, ProtocolLoggingLevel, ReceiveConnector};
use tokio::{
    io::AsyncWriteExt as _,
    net::{TcpListener, TcpStream},
    sync::watch,
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument as _, debug, info, info_span, warn};

use self::{
    budget::BodyBudget,
    connection::{Connection, Deadlines},
    session::{Next, Session, SessionContext},
};
use crate::{
    apply::EdgeConfig,
    config::SessionLimits,
    domain_security::DomainSecurity,
    metrics::RelayMetrics,
    protocol_log::{Event, ProtocolLog, SessionLog, new_session_id},
    queue::Queue,
    smtp::{
        credentials::Credentials,
        tls_info::{TlsInfo, log_certificate},
    },
};

/// What the inbound server shares across listeners and sessions.
pub struct Inbound {
    parts: InboundParts,
    budget: Arc<BodyBudget>,
    sessions: Mutex<SessionCounts>,
}

/// What [`Inbound::new`] is built from.
pub struct InboundParts {
    /// The configuration being served.
    pub config: watch::Receiver<Option<Arc<EdgeConfig>>>,
    /// Where accepted mail goes.
    pub queue: Queue,
    /// Counters.
    pub metrics: Arc<RelayMetrics>,
    /// Limits.
    pub limits: SessionLimits,
    /// The Receive protocol log.
    pub log: ProtocolLog,
    /// SMTP certificates.
    pub credentials: Arc<Credentials>,
    /// Addresses listened on.
    pub listening: Arc<Mutex<HashSet<SocketAddr>>>,
    /// Partner checks and counters.
    pub security: Arc<DomainSecurity>,
    /// Cancelled when the edge stops: idle sessions answer `421 4.3.2` and close.
    pub draining: CancellationToken,
    /// Every session, so a stop can wait for transactions in DATA to finish.
    pub tasks: TaskTracker,
}

#[derive(Default)]
struct SessionCounts {
    per_connector: HashMap<String, usize>,
    per_ip: HashMap<IpAddr, usize>,
}

/// Decrements the session counts when a session ends.
struct SessionSlot {
    inbound: Arc<Inbound>,
    connector: String,
    ip: IpAddr,
}

impl Inbound {
    /// The shared state; call [`Inbound::run`] to listen.
    pub fn new(parts: InboundParts) -> Arc<Self> {
        let budget = BodyBudget::new(parts.limits.max_receiving_memory);
        Arc::new(Self { parts, budget, sessions: Mutex::default() })
    }

    /// Listens on every binding of the current configuration until `shutdown`,
    /// opening and closing listeners as the configuration changes.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut config = self.parts.config.clone();
        let mut active: HashMap<SocketAddr, CancellationToken> = HashMap::new();
        loop {
            let wanted: HashSet<SocketAddr> = config
                .borrow_and_update()
                .as_ref()
                .map(|c| c.receive_connectors.iter().flat_map(|r| r.bindings.iter().map(|b| b.socket_addr())).collect())
                .unwrap_or_default();
            active.retain(|address, token| {
                let keep = wanted.contains(address);
                if !keep {
                    info!(%address, "receive connector binding removed; listener closed");
                    token.cancel();
                    self.lock_listening().remove(address);
                }
                keep
            });
            for address in wanted {
                if active.contains_key(&address) {
                    continue;
                }
                match bind(address) {
                    Ok(listener) => {
                        info!(%address, "listening for SMTP");
                        let token = shutdown.child_token();
                        active.insert(address, token.clone());
                        self.lock_listening().insert(address);
                        tokio::spawn(self.clone().accept(listener, address, token));
                    }
                    Err(error) => warn!(%address, %error, "cannot listen for SMTP; will retry on the next change"),
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = config.changed() => if changed.is_err() { return },
            }
        }
    }

    fn lock_listening(&self) -> std::sync::MutexGuard<'_, HashSet<SocketAddr>> {
        self.parts.listening.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn accept(self: Arc<Self>, listener: TcpListener, binding: SocketAddr, stop: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    let session_id = new_session_id();
                    let span = info_span!("smtp", session = %session_id, peer = %remote);
                    self.parts.tasks.spawn(self.clone().session(stream, binding, remote, session_id).instrument(span));
                }
                Err(error) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    warn!(%binding, %error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn session(self: Arc<Self>, mut stream: TcpStream, binding: SocketAddr, remote: SocketAddr, id: String) {
        self.parts.metrics.add(&self.parts.metrics.sessions_inbound, 1);
        let Some(config) = self.parts.config.borrow().clone() else { return };
        let Some(connector) = select_connector(&config.receive_connectors, binding, remote.ip()).cloned() else {
            self.parts.metrics.add(&self.parts.metrics.sessions_refused, 1);
            debug!("no receive connector serves this address");
            refuse(&mut stream, b"554 5.7.1 No service for your address\r\n").await;
            return;
        };
        let connector_id = format!("{}\\{}", connector.edge, connector.name);
        let Some(_slot) = self.clone().take_slot(&connector_id, remote.ip()) else {
            self.parts.metrics.add(&self.parts.metrics.sessions_refused, 1);
            refuse(&mut stream, b"421 4.3.2 Too many connections; try again later\r\n").await;
            return;
        };
        let local = stream.local_addr().unwrap_or(binding);
        let fqdn = connector.fqdn.as_ref().unwrap_or(&config.fqdn).to_string();
        let offers_tls = connector.auth_mechanisms.contains(&AuthMechanism::Tls);
        let request_client_certificate = connector.domain_secure_enabled;
        let (tls, certificate) = offers_tls
            .then(|| self.parts.credentials.server_config(&fqdn, request_client_certificate))
            .flatten()
            .unzip();
        let log = match connector.protocol_logging_level {
            ProtocolLoggingLevel::Verbose => self.parts.log.session(&connector_id, &id, local, remote),
            ProtocolLoggingLevel::None => SessionLog::disabled(),
        };
        let context = Arc::new(SessionContext {
            config,
            connector,
            connector_id,
            fqdn,
            tls,
            limits: self.parts.limits,
            queue: self.parts.queue.clone(),
            metrics: self.parts.metrics.clone(),
            security: self.parts.security.clone(),
            budget: self.budget.clone(),
            draining: self.parts.draining.clone(),
            local,
            remote,
        });
        self.serve(stream, context, log, certificate).await;
    }

    async fn serve(
        &self,
        stream: TcpStream,
        context: Arc<SessionContext>,
        log: SessionLog,
        certificate: Option<rustls::pki_types::CertificateDer<'static>>,
    ) {
        let deadlines = Deadlines {
            idle: self.parts.limits.idle_timeout,
            session_end: Instant::now() + self.parts.limits.session_timeout,
        };
        let mut session = Session::new(context, log);
        session.log().record(Event::Connect, "", "");
        let mut connection = Connection::new(stream, deadlines);
        session.greet(&mut connection);
        if let Next::StartTls = session.serve(&mut connection).await
            && let Some(tls) = session.tls_config()
        {
            let stream = connection.into_stream();
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            match tokio::time::timeout(self.parts.limits.tls_handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let (_, state) = stream.get_ref();
                    let info = TlsInfo::from_connection(state);
                    self.parts.metrics.add(&self.parts.metrics.tls_inbound, 1);
                    debug!(protocol = %info.protocol, cipher = %info.cipher, "TLS established");
                    let log = session.log();
                    log_certificate(log, "Sending certificate", certificate.as_ref());
                    log_certificate(log, "Received certificate", state.peer_certificates().and_then(|c| c.first()));
                    log.record(Event::Information, "", "TLS negotiation succeeded");
                    session.start_tls(info);
                    let mut connection = Connection::new(stream, deadlines);
                    let _ = session.serve(&mut connection).await;
                }
                Ok(Err(error)) => {
                    debug!(%error, "TLS handshake failed");
                    session.log().record(Event::Information, &error.to_string(), "TLS negotiation failed");
                }
                Err(_) => session.log().record(Event::Information, "", "TLS negotiation timed out"),
            }
        }
        session.log().record(Event::Disconnect, "", "");
    }

    fn take_slot(self: Arc<Self>, connector: &str, ip: IpAddr) -> Option<SessionSlot> {
        let mut counts = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let per_connector = counts.per_connector.get(connector).copied().unwrap_or(0);
        let per_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if per_connector >= self.parts.limits.max_sessions_per_connector
            || per_ip >= self.parts.limits.max_sessions_per_ip
        {
            debug!(per_connector, per_ip, "session cap reached");
            return None;
        }
        *counts.per_connector.entry(connector.to_owned()).or_default() += 1;
        *counts.per_ip.entry(ip).or_default() += 1;
        drop(counts);
        Some(SessionSlot { inbound: self, connector: connector.to_owned(), ip })
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut counts = self.inbound.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        decrement(&mut counts.per_connector, &self.connector);
        decrement(&mut counts.per_ip, &self.ip);
    }
}

fn decrement<K: std::hash::Hash + Eq + Clone>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}

/// The connector for a client: among those on this binding, the one whose remote
/// IP ranges match most specifically (no ranges = every address, least specific).
pub fn select_connector(
    connectors: &[ReceiveConnector],
    binding: SocketAddr,
    client: IpAddr,
) -> Option<&ReceiveConnector> {
    connectors
        .iter()
        .filter(|c| c.bindings.iter().any(|b| b.socket_addr() == binding))
        .filter_map(|c| {
            if c.remote_ip_ranges.is_empty() {
                return Some((0i16, c));
            }
            c.remote_ip_ranges
                .iter()
                .filter(|range| range.contains(client))
                .map(|range| i16::from(range.prefix_len()) + 1)
                .max()
                .map(|specificity| (specificity, c))
        })
        .max_by_key(|(specificity, _)| *specificity)
        .map(|(_, c)| c)
}

/// Writes a one-line refusal, giving up after a few seconds (the client may not read).
async fn refuse(stream: &mut TcpStream, reply: &[u8]) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.write_all(reply)).await;
}

fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}
