//! A relay on loopback with a configuration made in the test, a scripted SMTP
//! sink for the next hop, and a transcript-style SMTP client.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use domainsec_model::{
    AddressSpace, AuthMechanism, Binding, Domain, DomainPattern, IpRange, MessageSize, ObjectName, PermissionGroup,
    ProtocolLoggingLevel, ReceiveConnector, Routing, SendConnector, TransportConfig,
};
use edge::{
    apply::EdgeConfig, certificates::CertificateStore, config::EdgeSettings, relay::Relay, routing::dns::StaticMx,
};
use proto::edge as pb;
use tempfile::TempDir;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tokio_util::sync::CancellationToken;

pub use crate::support::{DEADLINE, eventually};

/// A relay running in this test with its own data dir.
pub struct TestRelay {
    pub dir: TempDir,
    pub relay: Relay,
    pub config: watch::Sender<Option<Arc<EdgeConfig>>>,
    shutdown: CancellationToken,
}

/// Contoso's directory for one edge, `mail1`, through the real controller: contoso.com
/// accepted, `FromHub` for the organization's servers on a free loopback port
/// (verbose), `Internet` sending `*` by DNS; the edge subscribed into `data`.
/// Returns FromHub's address.
pub async fn subscribed_hub_edge(
    controller: &controller::testing::TestController,
    data: &std::path::Path,
) -> SocketAddr {
    use proto::admin as api;
    let mut admin = controller.org_admin().await;
    admin.add_accepted_domain(api::AddAcceptedDomainRequest { domain: "contoso.com".into() }).await.unwrap();
    let file = crate::support::subscription_file(&mut admin, controller.dir.path(), "mail1").await;
    let hub: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    admin
        .create_receive_connector(api::ReceiveConnectorSpec {
            edge: "mail1".into(),
            name: "FromHub".into(),
            bindings: vec![hub.to_string()],
            remote_ip_ranges: vec!["127.0.0.1".into()],
            auth_mechanisms: vec![api::AuthMechanism::Tls as i32],
            permission_groups: vec![api::PermissionGroup::ExchangeServers as i32],
            protocol_logging_level: api::ProtocolLoggingLevel::Verbose as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    admin
        .create_send_connector(api::SendConnectorSpec {
            name: "Internet".into(),
            address_spaces: vec!["*".into()],
            source_edges: vec!["mail1".into()],
            protocol_logging_level: api::ProtocolLoggingLevel::Verbose as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    edge::control::subscribe::subscribe(&file, &edge::store::DataDir::new(data)).await.unwrap();
    hub
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The paper's Contoso edge: accepted domain contoso.com, an `Inet` receive
/// connector on a free loopback port (verbose logging, TLS offered), and an
/// `Internet` send connector routing `*` by DNS.
pub fn contoso_config() -> EdgeConfig {
    EdgeConfig {
        version: 1,
        fqdn: Domain::parse("mail1.contoso.com").unwrap(),
        transport: TransportConfig::default(),
        accepted_domains: vec![DomainPattern::parse("contoso.com").unwrap()],
        send_connectors: vec![send_connector("Internet", &["*"])],
        receive_connectors: vec![receive_connector("Inet", free_port())],
        trusted_roots: vec![],
        organization_domains: vec![],
    }
}

pub fn send_connector(name: &str, spaces: &[&str]) -> SendConnector {
    SendConnector {
        name: ObjectName::parse(name).unwrap(),
        address_spaces: spaces.iter().map(|s| AddressSpace::parse(s).unwrap()).collect(),
        routing: Routing::Dns,
        fqdn: None,
        domain_secure_enabled: false,
        dane_enabled: true,
        mta_sts_enabled: true,
        protocol_logging_level: ProtocolLoggingLevel::Verbose,
        source_edges: vec![ObjectName::parse("mail1").unwrap()],
        max_message_size: MessageSize::DEFAULT,
    }
}

pub fn receive_connector(name: &str, port: u16) -> ReceiveConnector {
    ReceiveConnector {
        edge: ObjectName::parse("mail1").unwrap(),
        name: ObjectName::parse(name).unwrap(),
        bindings: vec![Binding::parse(&format!("127.0.0.1:{port}")).unwrap()],
        remote_ip_ranges: vec![],
        fqdn: None,
        auth_mechanisms: vec![AuthMechanism::Tls],
        domain_secure_enabled: false,
        permission_groups: vec![PermissionGroup::AnonymousUsers],
        protocol_logging_level: ProtocolLoggingLevel::Verbose,
        max_message_size: MessageSize::new(64 * 1024).unwrap(),
    }
}

/// An internal connector for the organization's own servers on 127.0.0.1.
pub fn from_hub_connector(port: u16) -> ReceiveConnector {
    let mut connector = receive_connector("FromHub", port);
    connector.permission_groups = vec![PermissionGroup::ExchangeServers];
    connector.remote_ip_ranges = vec![IpRange::parse("127.0.0.1").unwrap()];
    connector
}

/// Settings for tests: fast retries, static routes only.
pub fn test_settings() -> EdgeSettings {
    let mut settings = EdgeSettings::default();
    settings.queue.retry_initial = Duration::from_millis(100);
    settings.queue.retry_max = Duration::from_millis(400);
    settings.queue.command_timeout = Duration::from_secs(5);
    settings.dns.static_only = true;
    settings
}

/// Routes `domain` to `hosts` (preference, address) through the static tables.
pub fn route(settings: &mut EdgeSettings, domain: &str, hosts: &[(u16, SocketAddr)]) {
    let mut mx = Vec::new();
    for (index, (preference, address)) in hosts.iter().enumerate() {
        let host = format!("mx{index}.{domain}");
        settings.dns.hosts.insert(host.clone(), vec![address.to_string()]);
        mx.push(StaticMx { preference: *preference, exchange: host });
    }
    settings.dns.mx.insert(domain.to_owned(), mx);
}

impl TestRelay {
    /// Starts a relay on a new data dir.
    pub async fn start(config: EdgeConfig, settings: EdgeSettings) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), config, settings).await
    }

    /// Starts a relay on `dir` (e.g. one a previous relay used).
    pub async fn start_in(dir: TempDir, config: EdgeConfig, settings: EdgeSettings) -> Self {
        let ports: Vec<SocketAddr> =
            config.receive_connectors.iter().flat_map(|c| c.bindings.iter().map(|b| b.socket_addr())).collect();
        let (sender, receiver) = watch::channel(Some(Arc::new(config)));
        let shutdown = CancellationToken::new();
        let relay = Relay::start(dir.path(), &settings, receiver, Arc::default(), &shutdown).unwrap();
        let relay = Self { dir, relay, config: sender, shutdown };
        for address in ports {
            eventually("the relay to listen", || async move { TcpStream::connect(address).await.ok().map(|_| ()) })
                .await;
        }
        relay
    }

    /// Starts a stop, as SIGTERM does: listeners close, idle sessions get `421`,
    /// no new deliveries start; `relay.tasks` finishes once the rest has.
    pub fn begin_drain(&self) {
        self.shutdown.cancel();
        self.relay.tasks.close();
    }

    /// The address of the first binding of the connector named `name`.
    pub fn address(&self, name: &str) -> SocketAddr {
        let config = self.config.borrow().clone().unwrap();
        let connector = config.receive_connectors.iter().find(|c| c.name.as_str() == name).unwrap();
        connector.bindings[0].socket_addr()
    }

    /// Enables a self-signed SMTP certificate for `name`.
    pub fn enable_certificate(&self, name: &str) -> String {
        let store = CertificateStore::new(self.dir.path());
        let result = store.execute(&pb::CertificateTask {
            id: format!("cert-{name}"),
            action: Some(pb::certificate_task::Action::NewCertificate(pb::NewCertificate {
                subject_name: format!("CN={name}"),
                domain_names: vec![name.to_owned()],
                services: vec!["smtp".into()],
                ..Default::default()
            })),
        });
        assert!(result.ok, "{}", result.error);
        result.thumbprint
    }

    /// Files delivered into the local maildir for `address`.
    pub fn mailbox(&self, address: &str) -> Vec<String> {
        let (local, domain) = address.split_once('@').unwrap();
        let dir: PathBuf = self.relay.maildir.join(domain).join(local.to_ascii_lowercase()).join("new");
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        entries.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect()
    }

    /// Waits for `count` messages in `address`'s mailbox.
    pub async fn wait_for_mail(&self, address: &str, count: usize) -> Vec<String> {
        eventually(&format!("{count} message(s) for {address}"), || async {
            let mail = self.mailbox(address);
            (mail.len() >= count).then_some(mail)
        })
        .await
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A scripted next hop: records what it receives and answers RCPTs by rule.
#[derive(Clone)]
pub struct Sink {
    pub address: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Replies to RCPT by recipient (default `250 2.1.5 OK`).
    pub rcpt_replies: Arc<Mutex<HashMap<String, String>>>,
    /// The next N DATA replies are this (then `250`).
    pub data_failures: Arc<Mutex<(usize, String)>>,
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    /// When set, EHLO does not offer PIPELINING (commands go one at a time).
    pub no_pipelining: Arc<std::sync::atomic::AtomicBool>,
    /// When set, STARTTLS is answered with garbage instead of a handshake.
    pub broken_tls: Arc<std::sync::atomic::AtomicBool>,
    /// Offers STARTTLS with a self-signed certificate when set.
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
}

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// Whether it came over TLS.
    pub tls: bool,
}

impl Sink {
    /// Listens on a free loopback port.
    pub async fn start() -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    /// A sink that offers STARTTLS (a self-signed certificate for mx.woodgrovebank.com).
    pub async fn start_with_tls() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate =
            rcgen::CertificateParams::new(vec!["mx.woodgrovebank.com".into()]).unwrap().self_signed(&key).unwrap();
        Self::start_with_chain(vec![certificate.der().to_vec()], key.serialize_der()).await
    }

    /// A sink that offers STARTTLS with `chain` (leaf first) and its PKCS#8 `key`.
    pub async fn start_with_chain(chain: Vec<Vec<u8>>, key: Vec<u8>) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                chain.into_iter().map(rustls::pki_types::CertificateDer::from).collect(),
                rustls::pki_types::PrivatePkcs8KeyDer::from(key).into(),
            )
            .unwrap();
        Self::listen(TcpListener::bind("127.0.0.1:0").await.unwrap(), Some(Arc::new(config))).await
    }

    pub async fn start_on(listener: TcpListener) -> Self {
        Self::listen(listener, None).await
    }

    async fn listen(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let sink = Self {
            address: listener.local_addr().unwrap(),
            received: Arc::default(),
            rcpt_replies: Arc::default(),
            data_failures: Arc::new(Mutex::new((0, String::new()))),
            connections: Arc::default(),
            no_pipelining: Arc::default(),
            broken_tls: Arc::default(),
            tls,
            shutdown: CancellationToken::new(),
        };
        let serving = sink.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = serving.shutdown.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { return };
                serving.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(serving.clone().serve(stream));
            }
        });
        sink
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        eventually(&format!("{count} message(s) at the sink"), || async {
            let messages = self.messages();
            (messages.len() >= count).then_some(messages)
        })
        .await
    }

    async fn serve(self, stream: TcpStream) {
        let mut stream = BufReader::new(stream);
        let _ = stream.write_all(b"220 sink.test ESMTP\r\n").await;
        if !self.session(&mut stream, false).await {
            return;
        }
        let Some(tls) = self.tls.clone() else { return };
        let Ok(stream) = tokio_rustls::TlsAcceptor::from(tls).accept(stream.into_inner()).await else { return };
        self.session(&mut BufReader::new(stream), true).await;
    }

    /// Serves commands; true when the client asked for STARTTLS.
    async fn session<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: &mut BufReader<S>, tls: bool) -> bool {
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return false;
            }
            let command = line.trim_end().to_owned();
            let upper = command.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") {
                let starttls = if self.tls.is_some() && !tls { "250-STARTTLS\r\n" } else { "" };
                let pipelining = if self.no_pipelining.load(std::sync::atomic::Ordering::SeqCst) {
                    ""
                } else {
                    "250-PIPELINING\r\n"
                };
                format!("250-sink.test\r\n{starttls}{pipelining}250-8BITMIME\r\n250 SIZE 10000000\r\n")
            } else if upper == "STARTTLS" && self.tls.is_some() && !tls {
                let _ = stream.write_all(b"220 2.0.0 ready\r\n").await;
                if self.broken_tls.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = stream.write_all(b"this is not a TLS record\r\n").await;
                    return false;
                }
                return true;
            } else if upper.starts_with("MAIL FROM:") {
                from = command[10..].split('>').next().unwrap_or_default().trim_start_matches('<').to_owned();
                to.clear();
                "250 2.1.0 OK\r\n".to_owned()
            } else if upper.starts_with("RCPT TO:") {
                let recipient = command[8..].split('>').next().unwrap_or_default().trim_start_matches('<').to_owned();
                let scripted = self.rcpt_replies.lock().unwrap().get(&recipient).cloned();
                match scripted {
                    Some(reply) => format!("{reply}\r\n"),
                    None => {
                        to.push(recipient);
                        "250 2.1.5 OK\r\n".to_owned()
                    }
                }
            } else if upper == "DATA" {
                if to.is_empty() {
                    "554 5.5.1 no valid recipients\r\n".to_owned()
                } else {
                    let _ = stream.write_all(b"354 go ahead\r\n").await;
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return false;
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    }
                    let failure = {
                        let mut failures = self.data_failures.lock().unwrap();
                        (failures.0 > 0).then(|| {
                            failures.0 -= 1;
                            format!("{}\r\n", failures.1)
                        })
                    };
                    failure.unwrap_or_else(|| {
                        let received = Received { from: from.clone(), to: to.clone(), data, tls };
                        self.received.lock().unwrap().push(received);
                        "250 2.0.0 queued\r\n".to_owned()
                    })
                }
            } else if upper == "QUIT" {
                let _ = stream.write_all(b"221 2.0.0 bye\r\n").await;
                return false;
            } else {
                "250 2.0.0 OK\r\n".to_owned()
            };
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return false;
            }
        }
    }
}

/// A transcript client: `client.command("MAIL FROM:<a@b.c>", 250)`.
pub struct Client<S> {
    stream: BufReader<S>,
}

impl Client<TcpStream> {
    /// Connects and checks the greeting.
    pub async fn connect(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).await.unwrap();
        let mut client = Self { stream: BufReader::new(stream) };
        let greeting = client.reply().await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        client
    }

    /// Connects and returns the raw greeting.
    pub async fn connect_raw(address: SocketAddr) -> (Self, String) {
        let stream = TcpStream::connect(address).await.unwrap();
        let mut client = Self { stream: BufReader::new(stream) };
        let greeting = client.reply().await;
        (client, greeting)
    }

    /// STARTTLS and a TLS handshake accepting any certificate.
    pub async fn start_tls(self) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
        self.start_tls_with(None).await
    }

    /// STARTTLS presenting `client` (certificate DER, PKCS#8 key DER) when asked.
    pub async fn start_tls_with(
        self,
        client: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
        self.start_tls_with_chain(client.map(|(certificate, key)| (vec![certificate], key))).await
    }

    /// STARTTLS presenting a whole chain (leaf first) with the leaf's key.
    pub async fn start_tls_with_chain(
        mut self,
        client: Option<(Vec<Vec<u8>>, Vec<u8>)>,
    ) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
        self.command("STARTTLS", 220).await;
        let config = insecure_client_config(client);
        let connector = tokio_rustls::TlsConnector::from(config);
        let name = rustls::pki_types::ServerName::try_from("mail1.contoso.com").unwrap();
        let tls = connector.connect(name, self.stream.into_inner()).await.unwrap();
        Client { stream: BufReader::new(tls) }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Sends a line and asserts the reply code; returns the whole reply.
    pub async fn command(&mut self, line: &str, code: u16) -> String {
        self.send(line).await;
        let reply = self.reply().await;
        assert!(reply.starts_with(&code.to_string()), "{line:?} -> {reply:?}, expected {code}");
        reply
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    pub async fn send(&mut self, line: &str) {
        self.write(format!("{line}\r\n").as_bytes()).await;
    }

    /// Reads one reply (all lines of a multi-line reply).
    pub async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(DEADLINE, self.stream.read_line(&mut line)).await.unwrap().unwrap();
            if read == 0 {
                return format!("{reply}(closed)");
            }
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    /// A whole transaction; returns the final reply.
    pub async fn send_message(&mut self, from: &str, to: &[&str], body: &str) -> String {
        self.command(&format!("MAIL FROM:<{from}>"), 250).await;
        for recipient in to {
            self.command(&format!("RCPT TO:<{recipient}>"), 250).await;
        }
        self.command("DATA", 354).await;
        self.write(body.as_bytes()).await;
        self.write(b"\r\n.\r\n").await;
        self.reply().await
    }
}

fn insecure_client_config(client: Option<(Vec<Vec<u8>>, Vec<u8>)>) -> Arc<rustls::ClientConfig> {
    #[derive(Debug)]
    struct Any(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for Any {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Any(provider)));
    let config = match client {
        Some((chain, key)) => config
            .with_client_auth_cert(
                chain.into_iter().map(Into::into).collect(),
                rustls::pki_types::PrivatePkcs8KeyDer::from(key).into(),
            )
            .unwrap(),
        None => config.with_no_client_auth(),
    };
    Arc::new(config)
}
