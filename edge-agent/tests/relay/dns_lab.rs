//! A DNSSEC lab on loopback: a real authoritative server (nsd) and a real
//! validating resolver (unbound), started per test as children in a temp dir,
//! serving zones the test describes. DANE and MTA-STS decisions hinge on whether
//! an answer is secure, insecure or bogus; only a real validator tells those apart
//! the way the Internet will, so the tests ask one instead of a fake.
//!
//! Nothing leaves loopback: every lab zone is its own trust island (a stub zone
//! pointing at nsd, a trust anchor for the signed ones), there is no root anchor
//! and no root hints, and every other name is refused by unbound itself. No file
//! outside the temp dir is written, port 53 is never used, and both servers run in
//! the foreground and are killed when the lab is dropped.

use std::{
    fmt::Write as _,
    fs,
    net::{SocketAddr, TcpListener, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use hickory_resolver::proto::{
    op::{Edns, Message, Query, ResponseCode},
    rr::{Name, RecordType},
};
use tempfile::TempDir;
use tokio::time::{Instant, sleep, timeout};

/// How a lab zone is published, which decides what unbound makes of its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// Signed (ECDSA P-256 KSK + ZSK, NSEC) and the KSK's DS is unbound's trust
    /// anchor: answers, NXDOMAIN and NODATA included, are secure (AD set).
    Signed,
    /// No signatures and no anchor: answers are insecure (AD clear).
    Unsigned,
    /// Signed and anchored like `Signed`, but every signature (the DNSKEY set's
    /// included) expired in 2000: `ldns-signzone -i 20000101 -e 20000201`. Since the
    /// zone's keys cannot be validated, every answer from it is SERVFAIL.
    Bogus,
}

/// One zone of the lab.
#[derive(Clone, Debug)]
pub struct Zone {
    /// The apex, e.g. `"dane.test"`. Lab zones must not nest: each is an island.
    pub origin: String,
    pub signing: Signing,
    /// Zone-file lines, names relative to `origin` or absolute with a final dot,
    /// e.g. `"@ MX 10 mx1"`, `"mx1 A 127.0.0.1"`. SOA and NS are added by the lab.
    pub records: Vec<String>,
}

/// nsd and unbound running for one test; both are killed on drop.
pub struct DnsLab {
    // Held for their `Drop`; declared before `dir` so the servers stop before their files go.
    _nsd: Server,
    _unbound: Server,
    authoritative: SocketAddr,
    resolver: SocketAddr,
    dir: TempDir,
}

/// A TLSA record line: `_25._tcp.mx1 TLSA 3 1 1 <hex>`.
pub fn zone_line_for_tlsa(owner: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) -> String {
    let hex = data.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    });
    format!("{owner} TLSA {usage} {selector} {matching} {hex}")
}

/// Sends one query with RD, AD and EDNS DO set (RFC 6840 §5.7, so a validator
/// reports AD) over UDP and returns the response.
pub async fn query(server: SocketAddr, name: &str, record_type: RecordType) -> Result<Message, String> {
    let fqdn = if name.ends_with('.') { name.to_owned() } else { format!("{name}.") };
    let name = Name::from_ascii(&fqdn).map_err(|e| format!("bad name {fqdn}: {e}"))?;
    let mut request = Message::query();
    request.add_query(Query::query(name, record_type));
    request.metadata.recursion_desired = true;
    request.metadata.authentic_data = true;
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true).set_max_payload(1232);
    request.set_edns(edns);
    let bytes = request.to_vec().map_err(|e| format!("encode query: {e}"))?;

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
    socket.connect(server).await.map_err(|e| format!("connect {server}: {e}"))?;
    socket.send(&bytes).await.map_err(|e| format!("send to {server}: {e}"))?;
    let mut buffer = vec![0; 65_535];
    loop {
        let received = timeout(QUERY_TIMEOUT, socket.recv(&mut buffer))
            .await
            .map_err(|_| format!("no answer from {server} within {QUERY_TIMEOUT:?}"))?
            .map_err(|e| format!("receive from {server}: {e}"))?;
        let response = Message::from_vec(&buffer[..received]).map_err(|e| format!("decode answer: {e}"))?;
        if response.metadata.id == request.metadata.id {
            return Ok(response);
        }
    }
}

// === impl Zone ===

impl Zone {
    pub fn new(origin: &str, signing: Signing, records: &[&str]) -> Self {
        Self { origin: origin.to_owned(), signing, records: records.iter().map(|&r| r.to_owned()).collect() }
    }

    fn apex(&self) -> String {
        format!("{}.", self.origin.trim_end_matches('.'))
    }
}

// === impl DnsLab ===

impl DnsLab {
    /// Whether nsd, unbound and the ldns signing tools are installed.
    pub fn available() -> Result<(), String> {
        let missing: Vec<&str> = TOOLS.iter().copied().filter(|tool| executable(tool).is_none()).collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "the DNS lab needs {} (not found); install with `apt-get install -y unbound nsd ldnsutils`",
            missing.join(", ")
        ))
    }

    /// Writes and signs `zones`, starts nsd and unbound on free loopback ports and
    /// returns once unbound answers the first zone's SOA as its signing predicts.
    /// Panics (with the servers' log tails) when the lab cannot start.
    pub async fn start(zones: Vec<Zone>) -> DnsLab {
        if let Err(e) = Self::available() {
            panic!("{e}");
        }
        assert!(!zones.is_empty(), "a DNS lab needs at least one zone");
        let keep = std::env::var_os("KEEP_TEST_DIRS").is_some();
        let dir = tempfile::Builder::new()
            .prefix("domainsec-dns-lab-")
            .disable_cleanup(keep)
            .tempdir()
            .expect("create the DNS lab's temp dir");
        if keep {
            eprintln!("DNS lab dir (kept): {}", dir.path().display());
        }
        let published: Vec<Published> = zones.iter().map(|zone| publish(dir.path(), zone)).collect();

        for attempt in 1..=START_ATTEMPTS {
            let authoritative = free_loopback_port();
            let mut nsd = Server::spawn(dir.path(), "nsd", &nsd_config(dir.path(), authoritative, &published));
            if !nsd.ready(authoritative, &zones[0], Expect::Authoritative).await {
                if attempt < START_ATTEMPTS && nsd.exited() {
                    continue; // most likely lost the port to someone else: new ports
                }
                panic!("nsd did not serve {}\n{}", zones[0].origin, logs(dir.path()));
            }
            let resolver = free_loopback_port();
            let mut unbound =
                Server::spawn(dir.path(), "unbound", &unbound_config(dir.path(), resolver, authoritative, &published));
            if !unbound.ready(resolver, &zones[0], Expect::from(zones[0].signing)).await {
                if attempt < START_ATTEMPTS && unbound.exited() {
                    continue;
                }
                panic!("unbound did not resolve {} as {:?}\n{}", zones[0].origin, zones[0].signing, logs(dir.path()));
            }
            return DnsLab { _nsd: nsd, _unbound: unbound, authoritative, resolver, dir };
        }
        unreachable!("the last attempt panics")
    }

    /// unbound, the validating resolver (UDP and TCP): what the code under test asks.
    pub fn resolver(&self) -> SocketAddr {
        self.resolver
    }

    /// nsd, the authoritative server (UDP and TCP), for debugging.
    pub fn authoritative(&self) -> SocketAddr {
        self.authoritative
    }

    /// Asks the resolver (see [`query`]); panics if it does not answer.
    pub async fn query(&self, name: &str, record_type: RecordType) -> Message {
        match query(self.resolver(), name, record_type).await {
            Ok(response) => response,
            Err(e) => panic!("query {name} {record_type}: {e}\n{}", logs(self.dir.path())),
        }
    }
}

// === impl Server ===

/// A child server; killed and reaped on drop so no daemon outlives the test.
/// `nsd -d` forks (the child we hold becomes xfrd, which forks main and the
/// server); those notice their parent's death and exit on their own.
struct Server {
    name: &'static str,
    child: Child,
}

impl Server {
    fn spawn(dir: &Path, name: &'static str, config: &str) -> Self {
        let config_path = dir.join(format!("{name}.conf"));
        fs::write(&config_path, config).expect("write server config");
        let stderr = fs::File::create(dir.join(format!("{name}.stderr"))).expect("create stderr file");
        let program = executable(name).unwrap_or_else(|| panic!("{name} is not installed"));
        let child = Command::new(program)
            .arg("-d")
            .arg("-c")
            .arg(&config_path)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Self { name, child }
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Polls `address` with the zone's SOA until the answer matches `expect`,
    /// the server exits, or the deadline passes.
    async fn ready(&mut self, address: SocketAddr, zone: &Zone, expect: Expect) -> bool {
        let deadline = Instant::now() + READY_DEADLINE;
        while Instant::now() < deadline {
            if self.exited() {
                eprintln!("{} exited during start-up", self.name);
                return false;
            }
            if let Ok(response) = query(address, &zone.origin, RecordType::SOA).await
                && expect.matches(&response)
            {
                return true;
            }
            sleep(POLL_INTERVAL).await;
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// === impl Expect ===

/// What a ready server answers for a zone's SOA.
#[derive(Clone, Copy)]
enum Expect {
    Authoritative,
    Secure,
    Insecure,
    Servfail,
}

impl From<Signing> for Expect {
    fn from(signing: Signing) -> Self {
        match signing {
            Signing::Signed => Self::Secure,
            Signing::Unsigned => Self::Insecure,
            Signing::Bogus => Self::Servfail,
        }
    }
}

impl Expect {
    fn matches(self, response: &Message) -> bool {
        let header = &response.metadata;
        let noerror = header.response_code == ResponseCode::NoError;
        match self {
            Self::Authoritative => noerror && header.authoritative,
            Self::Secure => noerror && header.authentic_data,
            Self::Insecure => noerror && !header.authentic_data,
            Self::Servfail => header.response_code == ResponseCode::ServFail,
        }
    }
}

// === zones and configs ===

/// A zone as nsd serves it, with the trust anchor unbound needs, if any.
struct Published {
    apex: String,
    file: PathBuf,
    trust_anchor: Option<String>,
}

fn publish(dir: &Path, zone: &Zone) -> Published {
    let apex = zone.apex();
    let mut text = format!(
        "$ORIGIN {apex}\n$TTL 300\n@ SOA lab-ns.{apex} hostmaster.{apex} 1 3600 600 86400 300\n\
         @ NS lab-ns.{apex}\nlab-ns A 127.0.0.1\n"
    );
    for record in &zone.records {
        text.push_str(record);
        text.push('\n');
    }
    let file = dir.join(format!("{apex}zone"));
    fs::write(&file, text).expect("write zone file");
    if zone.signing == Signing::Unsigned {
        return Published { apex, file, trust_anchor: None };
    }

    let ksk = run(dir, "ldns-keygen", &["-a", "ECDSAP256SHA256", "-k", &apex]);
    let zsk = run(dir, "ldns-keygen", &["-a", "ECDSAP256SHA256", &apex]);
    let signed = dir.join(format!("{apex}zone.signed"));
    let signed_arg = signed.to_string_lossy().into_owned();
    let file_arg = file.to_string_lossy().into_owned();
    let mut args = vec!["-f", &signed_arg];
    if zone.signing == Signing::Bogus {
        args.extend(["-i", "20000101000000", "-e", "20000201000000"]);
    }
    args.extend([file_arg.as_str(), ksk.trim(), zsk.trim()]);
    run(dir, "ldns-signzone", &args);
    // ldns-keygen -k writes the KSK's DS next to it, as one zone-file line.
    let ds = fs::read_to_string(dir.join(format!("{}.ds", ksk.trim()))).expect("read the KSK's DS");
    Published { apex, file: signed, trust_anchor: Some(ds.split_whitespace().collect::<Vec<_>>().join(" ")) }
}

fn nsd_config(dir: &Path, address: SocketAddr, zones: &[Published]) -> String {
    let d = dir.display();
    let port = address.port();
    let mut config = format!(
        "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  do-ip6: no\n  reuseport: no\n\
         \x20 server-count: 1\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{d}\"\n  database: \"\"\n\
         \x20 pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/nsd.xfrd\"\n  zonelistfile: \"{d}/nsd.zonelist\"\n\
         \x20 logfile: \"{d}/nsd.log\"\n  verbosity: 1\nremote-control:\n  control-enable: no\n"
    );
    for zone in zones {
        let _ = write!(config, "zone:\n  name: \"{}\"\n  zonefile: \"{}\"\n", zone.apex, zone.file.display());
    }
    config
}

/// unbound validating (`validator iterator`) with one stub zone and, for signed
/// zones, one trust anchor per lab zone. `local-zone: "." refuse` answers every
/// other name at once instead of trying the root; each lab zone is declared
/// `transparent` because otherwise the refusing root local zone covers it too.
fn unbound_config(dir: &Path, address: SocketAddr, nsd: SocketAddr, zones: &[Published]) -> String {
    let d = dir.display();
    let port = address.port();
    let mut config = format!(
        "server:\n  interface: 127.0.0.1@{port}\n  port: {port}\n  do-ip4: yes\n  do-ip6: no\n  do-udp: yes\n\
         \x20 do-tcp: yes\n  so-reuseport: no\n  num-threads: 1\n  chroot: \"\"\n  username: \"\"\n\
         \x20 directory: \"{d}\"\n  use-syslog: no\n  logfile: \"{d}/unbound.log\"\n\
         \x20 pidfile: \"{d}/unbound.pid\"\n  verbosity: 1\n  val-log-level: 2\n\
         \x20 module-config: \"validator iterator\"\n  root-hints: \"\"\n  auto-trust-anchor-file: \"\"\n\
         \x20 trust-anchor-file: \"\"\n  do-not-query-localhost: no\n  qname-minimisation: no\n\
         \x20 aggressive-nsec: no\n  local-zone: \".\" refuse\n"
    );
    for zone in zones {
        let _ = writeln!(config, "  local-zone: \"{}\" transparent", zone.apex);
        if let Some(anchor) = &zone.trust_anchor {
            let _ = writeln!(config, "  trust-anchor: \"{anchor}\"");
        }
    }
    config.push_str("remote-control:\n  control-enable: no\n");
    for zone in zones {
        let _ = write!(config, "stub-zone:\n  name: \"{}\"\n  stub-addr: 127.0.0.1@{}\n", zone.apex, nsd.port());
    }
    config
}

// === processes and ports ===

/// Runs a short tool in `dir`, returning its stdout; panics with its stderr.
fn run(dir: &Path, tool: &str, args: &[&str]) -> String {
    let program = executable(tool).unwrap_or_else(|| panic!("{tool} is not installed"));
    let output =
        Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(output.status.success(), "{tool} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Finds `tool` on PATH or in the sbin directories, which a non-root PATH lacks.
fn executable(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|directory| directory.join(tool))
        .find(|candidate| candidate.is_file())
}

/// A loopback port free for both UDP and TCP at the time of asking; start-up
/// retries with new ports if a server then fails to bind it.
fn free_loopback_port() -> SocketAddr {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        let address = udp.local_addr().expect("UDP local address");
        if TcpListener::bind(address).is_ok() {
            return address;
        }
    }
}

/// The tails of both servers' logs and stderr, for a panic message.
fn logs(dir: &Path) -> String {
    let mut text = String::new();
    for file in ["nsd.log", "nsd.stderr", "unbound.log", "unbound.stderr"] {
        let content = fs::read_to_string(dir.join(file)).unwrap_or_default();
        let lines: Vec<&str> = content.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        let _ = writeln!(text, "--- {file} (last {LOG_TAIL_LINES} lines)\n{tail}");
    }
    text
}

const TOOLS: [&str; 4] = ["nsd", "unbound", "ldns-keygen", "ldns-signzone"];
const START_ATTEMPTS: usize = 3;
const READY_DEADLINE: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
const LOG_TAIL_LINES: usize = 20;

#[tokio::test]
async fn the_lab_answers_secure_insecure_and_bogus() {
    if let Err(e) = DnsLab::available() {
        assert!(std::env::var_os("DOMAINSEC_REQUIRE_DNS_LAB").is_none(), "{e}");
        eprintln!("skipped: {e}");
        return;
    }
    let tlsa = zone_line_for_tlsa("_25._tcp.mx1", 3, 1, 1, &[0xab; 32]);
    let started = std::time::Instant::now();
    let lab = DnsLab::start(vec![
        Zone::new("dane.test", Signing::Signed, &["@ MX 10 mx1", "mx1 A 127.0.0.1", &tlsa]),
        Zone::new("plain.test", Signing::Unsigned, &["@ MX 10 mx1", "mx1 A 127.0.0.1"]),
        Zone::new("bogus.test", Signing::Bogus, &["@ MX 10 mx1", "mx1 A 127.0.0.1", &tlsa]),
    ])
    .await;
    eprintln!("DNS lab started in {} ms", started.elapsed().as_millis());

    let mx = lab.query("dane.test", RecordType::MX).await;
    assert_eq!((mx.metadata.response_code, mx.metadata.authentic_data), (ResponseCode::NoError, true));
    assert!(mx.answers.iter().any(|r| r.data.to_string() == "10 mx1.dane.test."), "{mx:?}");

    let tlsa = lab.query("_25._tcp.mx1.dane.test", RecordType::TLSA).await;
    assert_eq!((tlsa.metadata.response_code, tlsa.metadata.authentic_data), (ResponseCode::NoError, true));
    assert!(tlsa.answers.iter().any(|r| r.record_type() == RecordType::TLSA), "{tlsa:?}");

    // AD comes from unbound's validation: nsd itself serves the signed zone without it.
    let direct = query(lab.authoritative(), "dane.test", RecordType::MX).await.unwrap();
    assert!(direct.metadata.authoritative && !direct.metadata.authentic_data, "{direct:?}");

    let missing = lab.query("nothing-here.dane.test", RecordType::A).await;
    assert_eq!((missing.metadata.response_code, missing.metadata.authentic_data), (ResponseCode::NXDomain, true));

    let plain = lab.query("plain.test", RecordType::MX).await;
    assert_eq!((plain.metadata.response_code, plain.metadata.authentic_data), (ResponseCode::NoError, false));
    assert!(plain.answers.iter().any(|r| r.record_type() == RecordType::MX), "{plain:?}");

    let bogus_questions = [
        ("bogus.test", RecordType::MX),
        ("_25._tcp.mx1.bogus.test", RecordType::TLSA),
        ("mx1.bogus.test", RecordType::A),
    ];
    for (name, record_type) in bogus_questions {
        let bogus = lab.query(name, record_type).await;
        assert_eq!(bogus.metadata.response_code, ResponseCode::ServFail, "{name} {record_type}");
    }

    let outside = lab.query("example.com", RecordType::A).await;
    assert_eq!(outside.metadata.response_code, ResponseCode::Refused, "names outside the lab never leave it");
}
