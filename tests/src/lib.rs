//! The end-to-end harness: the real binaries as processes (two controllers, their
//! edges, dsctl), a database per organization, a test PKI whose CRL is served over
//! HTTP in the test, and an SMTP client. What the user runs is what is tested.
//!
//! The binaries come from the same `target/` as this test (`cargo test --workspace`
//! builds them); run `cargo build --bins` first when testing this crate alone.
#![allow(clippy::unwrap_used)]

#[cfg(test)]
mod image;

use std::{
    collections::HashSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rcgen::{CertificateSigningRequestParams, CrlDistributionPoint, Issuer, KeyPair, SerialNumber};
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    process::{Child, Command},
};

/// How long any one step may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(45);

/// A built binary next to this test executable.
/// Validates `document` against the JSON Schema at `schema` with Python's `jsonschema`
/// (which `.ci/run` installs): `None` where python3 or the module is missing, so a
/// developer's `cargo test` still checks the document's shape by its own asserts.
pub fn validate_json_schema(schema: &Path, document: &serde_json::Value) -> Option<Result<(), String>> {
    use std::io::Write as _;
    let script = "import json, sys\ntry:\n    import jsonschema\nexcept ImportError:\n    sys.exit(3)\n\
                  schema = json.load(open(sys.argv[1]))\ntry:\n    jsonschema.validate(json.load(sys.stdin), schema)\n\
                  except jsonschema.ValidationError as error:\n    print(error.message)\n    sys.exit(1)\n";
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(document.to_string().as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    match output.status.code() {
        Some(0) => Some(Ok(())),
        Some(3) => None,
        _ => Some(Err(String::from_utf8_lossy(&output.stdout).into_owned())),
    }
}

pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --bins` (or `cargo test --workspace`, which builds it)",
        path.display()
    );
    path
}

/// `GET path` on 127.0.0.1:`port`: the status code and the body.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Some((code, body))
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `check` until it returns `Some`, failing after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh database on the test server, dropped at the end.
pub struct Database {
    pub url: String,
    name: String,
    server: String,
}

impl Database {
    /// Creates `domainsec_e2e_<slug>_<random>`.
    pub async fn create(slug: &str) -> Self {
        let server =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("domainsec_e2e_{slug}_{}", std::process::id());
        let mut conn = PgConnection::connect(&server).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&mut conn).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
        let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
        Self { url: format!("{base}/{name}"), name, server }
    }

    /// Drops the database (the controllers must be stopped).
    pub async fn drop_now(self) {
        if let Ok(mut conn) = PgConnection::connect(&self.server).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
                .execute(&mut conn)
                .await;
        }
    }
}

/// A spawned binary, killed when dropped; its stderr goes to a log file.
pub struct Process {
    child: Child,
    pub log: PathBuf,
}

impl Process {
    /// Spawns `binary` with `args`, logging to `log`.
    pub fn spawn(binary: &Path, args: &[&str], log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        Self { child, log }
    }

    /// True while the process has not exited (a crash shows up here).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it with SIGKILL and waits.
    pub async fn kill(mut self) {
        self.kill_in_place().await;
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) with kill(1).
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the process runs").to_string();
        let status = Command::new("kill").arg(format!("-{signal}")).arg(pid).status().await.unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// SIGKILL, keeping the handle (its owner stays whole): `kill -9` of a process
    /// the test goes on to observe the absence of.
    pub async fn kill_in_place(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// An organization: its database, controller process and org-admin credential.
pub struct Organization {
    pub name: String,
    pub dir: PathBuf,
    pub credentials: PathBuf,
    pub controller: Process,
    pub database: Database,
    pub sync_port: u16,
}

/// A controller replica besides [`Organization::controller`].
pub struct Replica {
    /// Its `--controller-id` (what fleet status names).
    pub id: String,
    /// Its edge port.
    pub sync_port: u16,
    /// Its admin API port.
    pub admin_port: u16,
    /// The process.
    pub process: Process,
}

/// Output of one dsctl run.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Organization {
    /// `domainsec-controller init` and `serve` for `org` in `root/slug`.
    pub async fn start(root: &Path, slug: &str, org: &str) -> Self {
        Self::start_replicated(root, slug, org, 1).await.0
    }

    /// `init`, then `replicas` controller processes on the one database and state dir
    /// (`--controller-id replica-N`), each with its own ports; every replica names all
    /// edge ports in subscription files and the credential names all admin ports, so
    /// edges and dsctl go to another replica when one is gone. The first replica is
    /// [`Organization::controller`]; the others are returned with their edge ports.
    pub async fn start_replicated(root: &Path, slug: &str, org: &str, replicas: usize) -> (Self, Vec<Replica>) {
        let dir = root.join(slug);
        std::fs::create_dir_all(&dir).unwrap();
        let database = Database::create(slug).await;
        let ports: Vec<(u16, u16)> = (0..replicas.max(1)).map(|_| (free_port(), free_port())).collect();
        let controller = binary("domainsec-controller");
        let state = dir.join("state");
        let credentials = dir.join("admin.toml");
        let admins = ports.iter().map(|(admin, _)| format!("127.0.0.1:{admin}")).collect::<Vec<_>>().join(",");
        let init = Command::new(&controller)
            .args(["init", "--org", org, "--database-url", &database.url])
            .arg("--state-dir")
            .arg(&state)
            .arg("--out-admin")
            .arg(&credentials)
            .args(["--controller", &admins])
            .output()
            .await
            .unwrap();
        assert!(init.status.success(), "init {org}: {}", String::from_utf8_lossy(&init.stderr));
        let state_text = state.to_string_lossy().into_owned();
        let mut processes: Vec<Replica> = ports
            .iter()
            .enumerate()
            .map(|(index, (admin_port, sync_port))| {
                let admin = format!("127.0.0.1:{admin_port}");
                let sync = format!("127.0.0.1:{sync_port}");
                let id = format!("replica-{}", index + 1);
                let mut args = vec![
                    "serve".to_owned(),
                    "--database-url".to_owned(),
                    database.url.clone(),
                    "--state-dir".to_owned(),
                    state_text.clone(),
                    "--admin-listen".to_owned(),
                    admin,
                    "--edge-listen".to_owned(),
                    sync,
                ];
                if replicas > 1 {
                    args.extend(["--controller-id".to_owned(), id.clone()]);
                    for (_, port) in &ports {
                        args.extend(["--edge-endpoint".to_owned(), format!("127.0.0.1:{port}")]);
                    }
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let log = if index == 0 { dir.join("controller.log") } else { dir.join(format!("{id}.log")) };
                Replica {
                    id,
                    sync_port: *sync_port,
                    admin_port: *admin_port,
                    process: Process::spawn(&controller, &args, log),
                }
            })
            .collect();
        let first = processes.remove(0);
        let organization = Self {
            name: org.to_owned(),
            dir,
            credentials,
            controller: first.process,
            database,
            sync_port: first.sync_port,
        };
        eventually(&format!("the {org} controller"), || async {
            organization.dsctl(&["whoami"]).await.success.then_some(())
        })
        .await;
        (organization, processes)
    }

    /// Runs dsctl with this organization's credential.
    pub async fn dsctl(&self, args: &[&str]) -> Run {
        let output = Command::new(binary("dsctl"))
            .arg("--credentials")
            .arg(&self.credentials)
            .args(args)
            .env_remove("DSCTL_CREDENTIALS")
            .output()
            .await
            .unwrap();
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs dsctl and asserts success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let run = self.dsctl(args).await;
        assert!(run.success, "{}: dsctl {args:?} failed: {}", self.name, run.stderr);
        run.stdout
    }

    /// The paper's `Inet` receive connector on `edge` at `binding`: Domain Security on,
    /// STARTTLS offered, anonymous users and partners, verbose protocol log.
    pub async fn new_inet_connector(&self, edge: &str, binding: &str) {
        self.ok(&[
            "receive-connector",
            "new",
            "Inet",
            "--edge",
            edge,
            "--bindings",
            binding,
            "--domain-secure-enabled",
            "true",
            "--auth-mechanism",
            "tls",
            "--permission-groups",
            "anonymous-users,partners",
            "--protocol-logging-level",
            "verbose",
        ])
        .await;
    }

    /// Runs dsctl with `-o json` and parses the output.
    pub async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["-o", "json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.ok(&full).await).unwrap()
    }

    /// Waits until every edge ACKed the current configuration.
    pub async fn wait_in_sync(&self) {
        eventually(&format!("{}'s edges in sync", self.name), || async {
            // dsctl exits non-zero (3) while an edge is behind, and prints the table all the same.
            let run = self.dsctl(&["-o", "json", "edge", "test-sync"]).await;
            let status: serde_json::Value = serde_json::from_str(&run.stdout).ok()?;
            let rows = status.as_array()?.clone();
            let all_in_sync = !rows.is_empty() && rows.iter().all(|r| r["in_sync"] == true);
            assert_eq!(run.success, all_in_sync, "test-sync's exit code disagrees with its rows: {}", run.stdout);
            all_in_sync.then_some(())
        })
        .await;
    }

    /// Subscribes `edge` and runs it with `edge_toml`, its operations endpoint
    /// (`/metrics`, `/healthz`, `/readyz`) on [`Organization::operations_port`].
    pub async fn start_edge(&self, edge: &str, edge_toml: &str) -> Process {
        let subscription = self.dir.join(format!("{edge}.subscription"));
        let subscription_text = subscription.to_string_lossy().into_owned();
        self.ok(&["edge", "new-subscription", edge, "--out", &subscription_text]).await;
        let data = self.dir.join("edges").join(edge);
        let data_text = data.to_string_lossy().into_owned();
        let subscribed = Command::new(binary("domainsec-edge"))
            .args(["subscribe", "--file", &subscription_text, "--data-dir", &data_text])
            .output()
            .await
            .unwrap();
        assert!(subscribed.status.success(), "subscribe {edge}: {}", String::from_utf8_lossy(&subscribed.stderr));
        let config = self.dir.join(format!("{edge}.toml"));
        std::fs::write(&config, edge_toml).unwrap();
        let config_text = config.to_string_lossy().into_owned();
        let operations = format!("127.0.0.1:{}", self.operations_port(edge));
        Process::spawn(
            &binary("domainsec-edge"),
            &[
                "run",
                "--data-dir",
                &data_text,
                "--config",
                &config_text,
                "--heartbeat-interval",
                "500ms",
                "--metrics-listen",
                &operations,
            ],
            self.dir.join(format!("edge-{edge}.log")),
        )
    }

    /// The port of `edge`'s operations endpoint, chosen on first use and kept in
    /// the organization's directory so a restarted edge gets the same one.
    pub fn operations_port(&self, edge: &str) -> u16 {
        let file = self.dir.join(format!("{edge}.operations-port"));
        if let Ok(port) = std::fs::read_to_string(&file).map(|text| text.trim().parse::<u16>()) {
            return port.unwrap();
        }
        let port = free_port();
        std::fs::write(&file, port.to_string()).unwrap();
        port
    }

    /// Messages in `address`'s mailbox on `edge`.
    pub fn mailbox(&self, edge: &str, address: &str) -> Vec<String> {
        let (local, domain) = address.split_once('@').unwrap();
        let dir = self.dir.join("edges").join(edge).join("maildir").join(domain).join(local).join("new");
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        entries.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect()
    }

    /// Stops the controller and drops the database.
    pub async fn stop(self) {
        self.controller.kill().await;
        self.database.drop_now().await;
    }
}

/// The shared "third-party" CA both organizations trust, with an HTTP CRL.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    pub root_pem: String,
    pub crl_url: String,
    revoked: Arc<Mutex<HashSet<Vec<u8>>>>,
    pub crl_down: Arc<AtomicBool>,
}

impl Pki {
    /// Makes the root and serves its CRL (signed per request, nextUpdate +5 s).
    pub async fn start() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(rcgen::DnType::CommonName, "E2E Third-Party CA");
        let key = KeyPair::generate().unwrap();
        let key_pem = key.serialize_pem();
        let root_pem = params.self_signed(&key).unwrap().pem();
        let issuer = Issuer::new(params, key);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let crl_url = format!("http://{}/ca.crl", listener.local_addr().unwrap());
        let pki = Self { issuer, root_pem, crl_url, revoked: Arc::default(), crl_down: Arc::default() };
        let (revoked, down, root_pem) = (pki.revoked.clone(), pki.crl_down.clone(), pki.root_pem.clone());
        tokio::spawn(async move {
            let issuer = Issuer::from_ca_cert_pem(&root_pem, KeyPair::from_pem(&key_pem).unwrap()).unwrap();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                if down.load(Ordering::SeqCst) {
                    continue;
                }
                let mut request = [0u8; 2048];
                let _ = stream.read(&mut request).await;
                let now = OffsetDateTime::now_utc();
                let serials: Vec<Vec<u8>> = revoked.lock().unwrap().iter().cloned().collect();
                let params = rcgen::CertificateRevocationListParams {
                    this_update: now - Duration::from_secs(60),
                    next_update: now + Duration::from_secs(5),
                    crl_number: SerialNumber::from(u64::try_from(now.unix_timestamp()).unwrap_or(1)),
                    issuing_distribution_point: None,
                    revoked_certs: serials
                        .iter()
                        .map(|serial| rcgen::RevokedCertParams {
                            serial_number: SerialNumber::from_slice(serial),
                            revocation_time: now - Duration::from_secs(30),
                            reason_code: None,
                            invalidity_date: None,
                        })
                        .collect(),
                    key_identifier_method: rcgen::KeyIdMethod::Sha256,
                };
                let body = params.signed_by(&issuer).unwrap().der().to_vec();
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            }
        });
        pki
    }

    /// Signs a PKCS#10 request (PEM) with the CRL distribution point; returns the PEM chain.
    pub fn sign(&self, request_pem: &str) -> String {
        let mut request = CertificateSigningRequestParams::from_pem(request_pem).unwrap();
        let now = OffsetDateTime::now_utc();
        request.params.not_before = now - Duration::from_secs(3600);
        request.params.not_after = now + Duration::from_secs(30 * 86400);
        request.params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![self.crl_url.clone()] }];
        let certificate = request.signed_by(&self.issuer).unwrap();
        format!("{}{}", certificate.pem(), self.root_pem)
    }

    /// Revokes the certificate in `pem` (the leaf, first block).
    pub fn revoke(&self, pem_text: &str) {
        let leaf = pem::parse(pem_text).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf.contents()).unwrap();
        self.revoked.lock().unwrap().insert(parsed.raw_serial().to_vec());
    }
}

/// One SMTP session: sends each command and returns every reply (the message
/// follows `DATA`), asserting nothing.
pub async fn smtp(address: SocketAddr, commands: &[&str], message: &str) -> Vec<String> {
    let stream = TcpStream::connect(address).await.unwrap();
    let mut stream = BufReader::new(stream);
    let mut replies = vec![reply(&mut stream).await];
    for command in commands {
        stream.get_mut().write_all(format!("{command}\r\n").as_bytes()).await.unwrap();
        let answer = reply(&mut stream).await;
        let go_ahead = *command == "DATA" && answer.starts_with("354");
        replies.push(answer);
        if go_ahead {
            stream.get_mut().write_all(format!("{message}\r\n.\r\n").as_bytes()).await.unwrap();
            replies.push(reply(&mut stream).await);
        }
    }
    replies
}

async fn reply(stream: &mut BufReader<TcpStream>) -> String {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let read = tokio::time::timeout(DEADLINE, stream.read_line(&mut line)).await.unwrap().unwrap_or(0);
        if read == 0 {
            return text;
        }
        text.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return text;
        }
    }
}
