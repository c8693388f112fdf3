//! Drives the inbound SMTP session (`edge::inbound::session::Session` over a
//! `Connection`) with the fuzz bytes as everything a client sends, through an
//! in-memory transport: no socket, no real TLS. The session is built as
//! `Inbound::serve` builds it: the paper's Contoso edge (accepted domain
//! contoso.com), a receive connector `Inet` with Domain Security enabled, STARTTLS
//! offered, permission groups `anonymous-users` and `partners`, and the receive
//! secure list `*.woodgrovebank.com`, `woodgrovebank.com`. No root is trusted
//! (no organization roots, platform roots off), so no partner certificate can
//! verify.
//!
//! The first input byte sets up the run; the rest is the client's bytes.
//! - bits 0-1: what a STARTTLS upgrade yields. The handshake is faked the way
//!   `Inbound::serve` finishes a real one (`Session::start_tls` with a `TlsInfo`,
//!   then a fresh `Connection` on the same stream): 0 and 3, no client
//!   certificate; 1, a self-signed certificate for woodgrovebank.com; 2, a chain
//!   for woodgrovebank.com from an untrusted CA.
//! - bit 2: reads return as much as the server asks for (pipelining); otherwise
//!   each read returns at most one line, so the replies written before the next
//!   read answer exactly that line.
//!
//! INVARIANT:
//! - nothing panics, and the session ends within its input (10 s at most);
//! - no `250 2.1.0 <sender> Sender OK` reply names a sender at or under
//!   woodgrovebank.com (any case, trailing dots ignored): no certificate can be
//!   verified here, so no such transaction may start;
//! - in one-line-per-read mode, a line that is a `MAIL FROM` for such a sender (by
//!   this file's own lenient reading: any case, source routes, with or without
//!   angle brackets) and is answered by exactly one reply (so it was read as one
//!   command, not partly as BDAT chunk data) is not answered `250`, whatever the
//!   reply's text;
//! - nothing is spooled with such a sender, and no message is counted as Domain
//!   Secured;
//! - no queued message (as stored: the edge's `Received:` header, then what the
//!   client sent, scrubbed) carries a Domain Secured mark in its header section,
//!   by the same independent reader and rules as `header_scrub`
//!   (`domainsec_fuzz::headers::forged_field`): no forged mark gets through DATA
//!   or BDAT, dot-stuffing included;
//! - the Domain Security counters are keyed only by receive secure-list entries,
//!   never by a name the client chose (no client can grow them).
#![no_main]

use std::{
    io,
    ops::Range,
    path::PathBuf,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

use domainsec_fuzz::{
    clear_spool, contoso_config,
    headers::{escape, forged_field},
    is_partner, scratch_dir,
};
use edge::{
    apply::EdgeConfig,
    config::{DomainSecuritySettings, QueueSettings, SessionLimits},
    domain_security::{DomainSecurity, mta_sts::MtaSts},
    inbound::{
        budget::BodyBudget,
        connection::{Connection, Deadlines},
        session::{Next, Session, SessionContext},
    },
    metrics::RelayMetrics,
    protocol_log::SessionLog,
    queue::{Queue, spool::Spool},
    smtp::tls_info::TlsInfo,
};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

fuzz_target!(|data: &[u8]| {
    let Some((&setup, input)) = data.split_first() else { return };
    let fixture = fixture();
    clear_spool(&fixture.spool);
    let chain = fixture.peer_chains[usize::from(setup & 3) % fixture.peer_chains.len()].clone();
    let one_line_per_read = setup & 4 == 0;
    let metrics = Arc::new(RelayMetrics::default());
    let queue = Queue::open(&fixture.spool, QueueSettings::default(), metrics.clone()).expect("open the queue");
    let security = Arc::new(DomainSecurity::new(
        &fixture.data,
        &security_settings(),
        MtaSts::new(&fixture.data, &[], Duration::from_secs(1)),
    ));
    let limits = SessionLimits::default();
    let context = Arc::new(SessionContext {
        config: fixture.config.clone(),
        connector: fixture.config.receive_connectors[0].clone(),
        connector_id: "mail1\\Inet".to_owned(),
        fqdn: "mail1.contoso.com".to_owned(),
        tls: Some(fixture.tls.clone()),
        limits,
        queue,
        metrics,
        security: security.clone(),
        budget: BodyBudget::new(limits.max_receiving_memory),
        draining: tokio_util::sync::CancellationToken::new(),
        local: "10.0.0.5:25".parse().expect("local address"),
        remote: "192.0.2.9:13071".parse().expect("remote address"),
    });
    let script = Script { input: input.to_vec(), position: 0, one_line_per_read, output: Vec::new(), reads: Vec::new() };
    let script = fixture
        .runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(10), serve(Session::new(context, SessionLog::disabled()), script, chain))
                .await
        })
        .expect("the session did not end within its input");

    let output = String::from_utf8_lossy(&script.output);
    for line in output.split("\r\n") {
        if let Some(sender) = line.strip_prefix("250 2.1.0 <").and_then(|rest| rest.rsplit_once("> Sender OK")) {
            let domain = sender.0.rsplit_once('@').map_or("", |(_, domain)| domain);
            assert!(!is_partner(domain), "MAIL FROM accepted for a partner without a verified certificate: {line:?}");
        }
    }
    if one_line_per_read {
        for (index, read) in script.reads.iter().enumerate() {
            let line = &script.input[read.input.clone()];
            if !mail_from_domain(line).is_some_and(|domain| is_partner(&domain)) {
                continue;
            }
            let end = script.reads.get(index + 1).map_or(script.output.len(), |next| next.output_start);
            let answer = String::from_utf8_lossy(&script.output[read.output_start..end]);
            // The last line of each reply has a space after the code; a line that
            // was a whole command gets exactly one reply. (More than one: part of
            // the line was BDAT chunk data and the rest a command.)
            let replies: Vec<&str> = answer.split("\r\n").filter(|line| line.get(3..4) == Some(" ")).collect();
            assert!(
                !matches!(replies.as_slice(), [reply] if reply.starts_with("250")),
                "{:?} answered {replies:?} without a verified certificate",
                line.escape_ascii().to_string()
            );
        }
    }
    let spool = Spool::open(&fixture.spool).expect("open the spool");
    for message in spool.recover().expect("recover the spool") {
        let sender = message.envelope.sender.as_ref().map(|s| s.domain().to_owned()).unwrap_or_default();
        assert!(!is_partner(&sender), "a message from {sender} was queued without a verified certificate");
        let stored = spool.read_message(&message.envelope.id).expect("read back a queued message");
        if let Some((field, rule)) = forged_field(&stored, &["mail1.contoso.com"], &["contoso.com"]) {
            panic!("{rule} reached the queue: {:?}\nmessage: {:?}", escape(&field), escape(&stored));
        }
    }
    let counts = security.counters.counts();
    assert_eq!(counts.messages_received, 0, "a message was counted as Domain Secured");
    let entries: Vec<String> =
        fixture.config.transport.tls_receive_domain_secure_list.iter().map(ToString::to_string).collect();
    for key in counts.partners.keys() {
        assert!(entries.contains(key), "the counters grew a key the client chose: {key:?} (entries: {entries:?})");
    }
});

/// Serves the session as `Inbound::serve` does, with a faked TLS upgrade.
async fn serve(mut session: Session, script: Script, peer_certificates: Vec<Vec<u8>>) -> Script {
    let deadlines =
        Deadlines { idle: Duration::from_secs(30), session_end: tokio::time::Instant::now() + Duration::from_secs(60) };
    let mut connection = Connection::new(script, deadlines);
    session.greet(&mut connection);
    let Next::StartTls = session.serve(&mut connection).await else { return connection.into_stream() };
    let info = TlsInfo { protocol: "TLSv1_3".into(), cipher: "TLS13_AES_256_GCM_SHA384".into(), peer_certificates };
    session.start_tls(info);
    let mut connection = Connection::new(connection.into_stream(), deadlines);
    let _ = session.serve(&mut connection).await;
    connection.into_stream()
}

/// The client: hands out the input, keeps what the server writes, and records
/// where each read started in the input and in the output.
struct Script {
    input: Vec<u8>,
    position: usize,
    one_line_per_read: bool,
    output: Vec<u8>,
    reads: Vec<Read>,
}

struct Read {
    /// The bytes this read returned.
    input: Range<usize>,
    /// How much the server had written before it.
    output_start: usize,
}

impl AsyncRead for Script {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buffer: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let pending = &this.input[this.position..];
        let mut length = pending.len().min(buffer.remaining());
        if length == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.one_line_per_read
            && let Some(newline) = pending[..length].iter().position(|b| *b == b'\n')
        {
            length = newline + 1;
        }
        buffer.put_slice(&pending[..length]);
        this.reads.push(Read { input: this.position..this.position + length, output_start: this.output.len() });
        this.position += length;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Script {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        self.output.extend_from_slice(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The sender's domain if `line` (with its line end) reads as a `MAIL FROM`.
fn mail_from_domain(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line).to_ascii_lowercase();
    let rest = text.trim_start().strip_prefix("mail")?.trim_start().strip_prefix("from:")?.trim_start();
    let path = match rest.strip_prefix('<') {
        Some(inner) => inner.split('>').next().unwrap_or(inner),
        None => rest.split_whitespace().next().unwrap_or_default(),
    };
    if path.contains(char::is_control) {
        return None; // refused by any parser, and not one address
    }
    let (_, domain) = path.rsplit_once('@')?;
    domain.split_whitespace().next().map(str::to_owned)
}

/// What every run shares: built once per process.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    config: Arc<EdgeConfig>,
    tls: Arc<rustls::ServerConfig>,
    /// Client chains a faked STARTTLS presents, by the setup byte's low bits.
    peer_chains: Vec<Vec<Vec<u8>>>,
    spool: PathBuf,
    data: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = scratch_dir("inbound");
        let data = root.join("data");
        std::fs::create_dir_all(&data).expect("create the data directory");
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("build the tokio runtime");
        Fixture {
            runtime,
            config: Arc::new(contoso_config()),
            tls: Arc::new(server_tls()),
            peer_chains: peer_chains(),
            spool: root.join("spool"),
            data,
        }
    })
}

fn security_settings() -> DomainSecuritySettings {
    DomainSecuritySettings { platform_roots: false, ..DomainSecuritySettings::default() }
}

/// The edge's own STARTTLS configuration (never used for a handshake here).
fn server_tls() -> rustls::ServerConfig {
    let key = rcgen::KeyPair::generate().expect("generate a key");
    let certificate = rcgen::CertificateParams::new(vec!["mail1.contoso.com".to_owned()])
        .and_then(|params| params.self_signed(&key))
        .expect("self-sign the edge certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certificate.der().clone()], key)
        .expect("server config")
}

/// No certificate; a self-signed one for woodgrovebank.com; a chain from an untrusted CA.
fn peer_chains() -> Vec<Vec<Vec<u8>>> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let names = vec!["woodgrovebank.com".to_owned(), "mail.woodgrovebank.com".to_owned()];
    let mut leaf = CertificateParams::new(names).expect("leaf parameters");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let self_signed = leaf.self_signed(&KeyPair::generate().expect("key")).expect("self-signed leaf");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
    let issued = leaf.signed_by(&KeyPair::generate().expect("key"), &ca).expect("issued leaf");
    vec![vec![], vec![self_signed.der().to_vec()], vec![issued.der().to_vec(), ca.der().to_vec()]]
}
