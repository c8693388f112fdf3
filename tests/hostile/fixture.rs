//! The one organization every case attacks, set up once through dsctl as the
//! walkthrough does: Contoso (controller + edge `mail1`), accepted domain
//! contoso.com delivered to the edge's maildir, `TLSReceiveDomainSecureList` =
//! `woodgrovebank.com, *.fabrikam.com`, the `Inet` receive connector with Domain
//! Security and STARTTLS (a self-signed edge certificate), and the partner CA as a
//! trusted root.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use domainsec_e2e::{Organization, Process, eventually, free_port};
use tokio::task::JoinHandle;

use crate::{attacker::Session, partner_pki::PartnerPki};

/// The edge's name, and the authserv-id of its mark.
pub const FQDN: &str = "mail1.contoso.com";
/// The edge's name in the directory.
pub const EDGE: &str = "mail1";
/// Where every attack sends its mail.
pub const POSTMASTER: &str = "postmaster@contoso.com";
/// An address on no secure list.
pub const MALLORY: &str = "mallory@attacker.example";
/// The edge's CRL fetch timeout (`[domain_security] crl_fetch_timeout`).
pub const CRL_FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// The edge's idle timeout (`[limits] idle_timeout`).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// The edge's session timeout (`[limits] session_timeout`).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(20);

/// A flood in the background: what the edge said, and when it hung up.
pub type Flood = JoinHandle<(String, Duration)>;

/// What the cases share.
pub struct Fixture {
    /// Contoso.
    pub org: Organization,
    /// The `Inet` receive connector.
    pub inet: SocketAddr,
    /// The partner CA Contoso trusts, and its CRL server.
    pub pki: PartnerPki,
    /// The edge process.
    pub edge: Mutex<Process>,
    /// Tags of messages the edge refused: none may ever reach the maildir.
    pub refused: Mutex<Vec<String>>,
    /// Floods started before the first case, judged by the liveness cases: each
    /// ends with what the edge said and how long after its start the edge hung up.
    pub floods: Mutex<Vec<(&'static str, Flood)>>,
    /// Kept (and named in the report) when `KEEP_TEST_DIRS` is set.
    pub root: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

// === impl Fixture ===

impl Fixture {
    /// Starts the controller and the edge and configures them.
    pub async fn start() -> Arc<Self> {
        let dir = tempfile::tempdir().unwrap();
        let (root, dir) = match std::env::var_os("KEEP_TEST_DIRS") {
            Some(_) => (dir.keep(), None),
            None => (dir.path().to_owned(), Some(dir)),
        };
        let pki = PartnerPki::start().await;
        let org = Organization::start(&root, "hostile", "Contoso").await;
        let port = free_port();
        configure(&org, port).await;
        let edge = org.start_edge(EDGE, EDGE_TOML).await;
        org.wait_in_sync().await;
        org.ok(&["cert", "new", "--edge", EDGE, "--enable", "smtp"]).await;
        let root_file = root.join("partner-ca.pem");
        std::fs::write(&root_file, &pki.root_pem).unwrap();
        org.ok(&["trusted-root", "add", "--path", &root_file.to_string_lossy()]).await;
        org.wait_in_sync().await;
        let inet: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        eventually("the Inet connector offering STARTTLS", || async {
            let mut session = Session::connect(inet).await.ok()?;
            let ehlo = session.command("EHLO attacker.example").await.ok()?;
            session.quit().await;
            ehlo.text.contains("STARTTLS").then_some(())
        })
        .await;
        Arc::new(Self {
            org,
            inet,
            pki,
            edge: Mutex::new(edge),
            refused: Mutex::default(),
            floods: Mutex::default(),
            root,
            _dir: dir,
        })
    }

    /// Stops the edge and the controller and drops the database (once no case holds the fixture).
    pub async fn stop(self: Arc<Self>) {
        let mut shared = self;
        for _ in 0..100 {
            match Arc::try_unwrap(shared) {
                Ok(fixture) => {
                    fixture.edge.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).kill().await;
                    fixture.org.stop().await;
                    return;
                }
                Err(still_shared) => {
                    shared = still_shared;
                    tokio::task::yield_now().await;
                }
            }
        }
        eprintln!("a case still holds the fixture; its database is left behind");
    }

    /// Every message in the postmaster's mailbox holding `tag`.
    pub fn delivered(&self, tag: &str) -> Vec<String> {
        self.org.mailbox(EDGE, POSTMASTER).into_iter().filter(|m| m.contains(tag)).collect()
    }

    /// Waits for the message holding `tag`; exactly one copy must arrive.
    pub async fn await_delivery(&self, tag: &str) -> anyhow::Result<String> {
        let mut copies = eventually(&format!("the message {tag} in the maildir"), || async {
            let copies = self.delivered(tag);
            (!copies.is_empty()).then_some(copies)
        })
        .await;
        anyhow::ensure!(copies.len() == 1, "{} copies of {tag} were delivered", copies.len());
        Ok(copies.remove(0))
    }

    /// Records a message the edge refused (checked against the maildir at the end).
    pub fn refused(&self, tag: &str) {
        self.refused.lock().unwrap().push(tag.to_owned());
    }
}

async fn configure(org: &Organization, port: u16) {
    org.ok(&["accepted-domain", "add", "contoso.com"]).await;
    org.ok(&["edge", "add", EDGE, "--fqdn", FQDN]).await;
    org.ok(&["transport-config", "set", "--tls-receive-domain-secure-list", "woodgrovebank.com,*.fabrikam.com"]).await;
    let binding = format!("127.0.0.1:{port}");
    org.new_inet_connector(EDGE, &binding).await;
    let config = org.ok(&["transport-config", "get"]).await;
    assert!(config.contains("woodgrovebank.com") && config.contains("*.fabrikam.com"), "{config}");
}

/// Short timeouts so the liveness cases finish quickly; no DNS (loopback only).
const EDGE_TOML: &str = r#"
[dns]
static_only = true

[limits]
idle_timeout = "5s"
session_timeout = "20s"

[domain_security]
crl_fetch_timeout = "2s"
platform_roots = false
"#;
