//! EdgeSync benchmark: N simulated edges, each a real mutual-TLS gRPC stream from
//! this process, against a real `domainsec-controller` process on loopback.
//!
//! Measures (1) controller memory per idle connected edge, (2) commit-to-ACK for a
//! `dsctl` change, split into notification delay (commit → first edge receives)
//! and delivery (first → each edge), and (3) how fast all edges are back after a
//! controller restart. Setup shortcut: the edges' certificates are inserted into
//! the directory in bulk instead of N subscription round trips; everything
//! measured goes through the real TLS, gRPC and LISTEN/NOTIFY paths.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, bail};
use clap::Parser;
use edge::{
    control::{
        sync::backoff,
        tls::{self, PinnedControllers},
    },
    identity::EdgeIdentity,
};
use proto::edge::{self as pb, edge_message::Kind, edge_sync_client::EdgeSyncClient};
use rustls::pki_types::CertificateDer;
use sqlx::{Connection, PgConnection};
use tokio::{
    process::Command,
    sync::{Semaphore, watch},
};
use tokio_stream::wrappers::ReceiverStream;

#[derive(Debug, Parser)]
struct Args {
    /// Simulated edges.
    #[arg(long, default_value_t = 10_000)]
    edges: usize,
    /// Changes to time.
    #[arg(long, default_value_t = 5)]
    changes: usize,
    /// PostgreSQL server (a database `edgesync_bench` is created and dropped there).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_server: String,
    /// Directory with domainsec-controller and dsctl (a release build).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Scratch directory.
    #[arg(long, default_value = "target/edgesync-bench")]
    work_dir: PathBuf,
    /// Concurrent TLS handshakes while connecting the fleet.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
}

/// What each simulated edge reports.
#[derive(Default)]
struct EdgeClock {
    /// Version and arrival time of each snapshot.
    received: Vec<(u64, SystemTime)>,
    /// When each stream was accepted.
    streams: Vec<SystemTime>,
}

const ADMIN_PORT: u16 = 50_152;
const EDGE_PORT: u16 = 50_151;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let database_url = database(&args.database_server, "edgesync_bench");
    let mut server = PgConnection::connect(&args.database_server).await.context("connect to PostgreSQL")?;
    sqlx::query("DROP DATABASE IF EXISTS edgesync_bench WITH (FORCE)").execute(&mut server).await?;
    sqlx::query("CREATE DATABASE edgesync_bench").execute(&mut server).await?;
    let _ = std::fs::remove_dir_all(&args.work_dir);
    std::fs::create_dir_all(&args.work_dir)?;
    let credentials = args.work_dir.join("admin.toml");
    let state = args.work_dir.join("state");
    let status = Command::new(args.bin_dir.join("domainsec-controller"))
        .args([
            "init",
            "--org",
            "Bench",
            "--database-url",
            &database_url,
            "--controller",
            &format!("127.0.0.1:{ADMIN_PORT}"),
        ])
        .arg("--state-dir")
        .arg(&state)
        .arg("--out-admin")
        .arg(&credentials)
        .stdout(Stdio::null())
        .status()
        .await?;
    if !status.success() {
        bail!("domainsec-controller init failed");
    }
    let mut controller = spawn_controller(&args, &database_url, &state)?;
    let pid = controller.id().context("controller pid")?;
    wait_for_admin(&args, &credentials).await?;
    let mut db = PgConnection::connect(&database_url).await?;
    let controller_sha256 = wait_for_controller_certificate(&mut db).await?;

    println!(
        "== EdgeSync benchmark: {} simulated edges, {} cores",
        args.edges,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let started = Instant::now();
    let identities = make_edges(&mut db, args.edges).await?;
    println!("setup: {} edge identities recorded in {:.1?}", identities.len(), started.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = rss_kib(pid)?;

    let clocks: Vec<Arc<Mutex<EdgeClock>>> =
        (0..args.edges).map(|_| Arc::new(Mutex::new(EdgeClock::default()))).collect();
    let pinned = Arc::new(PinnedControllers::new([controller_sha256]));
    let (stop_tx, stop) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    let connect_started = Instant::now();
    let mut tasks = Vec::new();
    for (identity, clock) in identities.into_iter().zip(&clocks) {
        tasks.push(tokio::spawn(simulate_edge(identity, pinned.clone(), clock.clone(), gate.clone(), stop.clone())));
    }
    let current = config_version(&mut db).await?;
    wait_all(&clocks, "every edge connected and in sync", Duration::from_secs(300), |c| {
        c.received.iter().any(|(v, _)| *v >= current)
    })
    .await?;
    let connect_time = connect_started.elapsed();
    println!(
        "connect: all {} edges streaming and ACKed in {:.1?} ({:.0} edges/s)",
        args.edges,
        connect_time,
        args.edges as f64 / connect_time.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let connected = rss_kib(pid)?;
    println!(
        "memory: controller RSS {} MiB idle with no edges, {} MiB with {} idle edges: {:.1} KiB per edge (target <= 64 KiB)",
        baseline / 1024,
        connected / 1024,
        args.edges,
        (connected.saturating_sub(baseline)) as f64 / args.edges as f64
    );

    let mut latencies = Vec::new();
    let mut notification = Vec::new();
    let mut controller_acks = Vec::new();
    for round in 0..args.changes {
        let domain = format!("partner{round}.example");
        let output = Command::new(args.bin_dir.join("dsctl"))
            .args(["--credentials"])
            .arg(&credentials)
            .args(["transport-config", "set", "--tls-send-domain-secure-list", &domain])
            .output()
            .await?;
        if !output.status.success() {
            bail!("dsctl failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let version = config_version(&mut db).await?;
        let committed: chrono_free::Timestamp =
            sqlx::query_scalar("SELECT EXTRACT(EPOCH FROM at)::float8 FROM audit_log WHERE config_version = $1")
                .bind(i64::try_from(version)?)
                .fetch_one(&mut db)
                .await?;
        wait_all(&clocks, "every edge got the change", Duration::from_secs(60), |c| {
            c.received.iter().any(|(v, _)| *v >= version)
        })
        .await?;
        let arrivals: Vec<f64> = clocks
            .iter()
            .filter_map(|c| {
                let clock = c.lock().ok()?;
                clock.received.iter().find(|(v, _)| *v >= version).map(|(_, at)| epoch(*at) - committed)
            })
            .collect();
        let first = arrivals.iter().copied().fold(f64::INFINITY, f64::min);
        notification.push(first);
        latencies.extend(arrivals.iter().copied());
        // The controller's own ACK times, written in batches every 200 ms.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let acks: Vec<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM acked_at)::float8 - $2 FROM edge_sync_state WHERE last_version_acked >= $1",
        )
        .bind(i64::try_from(version)?)
        .bind(committed)
        .fetch_all(&mut db)
        .await?;
        controller_acks.extend(acks);
        println!(
            "change {}: version {version}: first edge after {:.0} ms, last after {:.0} ms",
            round + 1,
            first * 1e3,
            arrivals.iter().copied().fold(0.0, f64::max) * 1e3
        );
    }
    latencies.sort_by(f64::total_cmp);
    controller_acks.sort_by(f64::total_cmp);
    notification.sort_by(f64::total_cmp);
    println!(
        "commit -> snapshot at edge ({} samples): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        pct(&latencies, 50.0) * 1e3,
        pct(&latencies, 90.0) * 1e3,
        pct(&latencies, 99.0) * 1e3,
        pct(&latencies, 100.0) * 1e3
    );
    println!(
        "commit -> ACK at controller ({} samples): p50 {:.0} ms, p99 {:.0} ms (target p99 <= 1000 ms)",
        controller_acks.len(),
        pct(&controller_acks, 50.0) * 1e3,
        pct(&controller_acks, 99.0) * 1e3
    );
    println!(
        "  of which notification delay (commit -> first edge): median {:.0} ms; delivery to the p99 edge: {:.0} ms",
        pct(&notification, 50.0) * 1e3,
        (pct(&latencies, 99.0) - pct(&notification, 50.0)) * 1e3
    );

    // Restart: stop the controller, start it again, time every edge's return.
    let restart_from = SystemTime::now();
    terminate(&mut controller).await;
    let restarted_at = SystemTime::now();
    let mut controller = spawn_controller(&args, &database_url, &state)?;
    let current = config_version(&mut db).await?;
    wait_all(&clocks, "every edge back after the restart", Duration::from_secs(120), |c| {
        c.streams.iter().any(|at| *at > restarted_at)
    })
    .await?;
    let mut back: Vec<f64> = clocks
        .iter()
        .filter_map(|c| {
            let clock = c.lock().ok()?;
            clock.streams.iter().find(|at| **at > restarted_at).map(|at| epoch(*at) - epoch(restart_from))
        })
        .collect();
    back.sort_by(f64::total_cmp);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let in_sync: i64 =
        sqlx::query_scalar("SELECT count(*) FROM edge_sync_state WHERE connected AND last_version_acked = $1")
            .bind(i64::try_from(current)?)
            .fetch_one(&mut db)
            .await?;
    println!(
        "restart: edges back and in sync: p50 {:.1} s, p99 {:.1} s, max {:.1} s (target p99 <= 30 s); {in_sync}/{} recorded connected at version {current}",
        pct(&back, 50.0),
        pct(&back, 99.0),
        pct(&back, 100.0),
        args.edges
    );

    let _ = stop_tx.send(true);
    terminate(&mut controller).await;
    for task in tasks {
        task.abort();
    }
    drop(db);
    sqlx::query("DROP DATABASE IF EXISTS edgesync_bench WITH (FORCE)").execute(&mut server).await?;
    Ok(())
}

/// Seconds since the epoch as f64 (PostgreSQL's EXTRACT(EPOCH ...)).
mod chrono_free {
    pub type Timestamp = f64;
}

fn epoch(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn pct(sorted: &[f64], percentile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((percentile / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn database(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').map_or((server, ""), |(b, q)| (b, q));
    let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
    if query.is_empty() { format!("{root}/{name}") } else { format!("{root}/{name}?{query}") }
}

fn spawn_controller(args: &Args, database_url: &str, state: &std::path::Path) -> anyhow::Result<tokio::process::Child> {
    Command::new(args.bin_dir.join("domainsec-controller"))
        .args(["serve", "--database-url", database_url])
        .args([
            "--admin-listen",
            &format!("127.0.0.1:{ADMIN_PORT}"),
            "--edge-listen",
            &format!("127.0.0.1:{EDGE_PORT}"),
        ])
        .arg("--state-dir")
        .arg(state)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("start domainsec-controller")
}

async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
    }
    if tokio::time::timeout(Duration::from_secs(20), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

async fn wait_for_admin(args: &Args, credentials: &std::path::Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = Command::new(args.bin_dir.join("dsctl"))
            .arg("--credentials")
            .arg(credentials)
            .arg("whoami")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await?;
        if status.success() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the controller did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_controller_certificate(db: &mut PgConnection) -> anyhow::Result<String> {
    let pem: String =
        sqlx::query_scalar("SELECT certificate_pem FROM controller_certificates WHERE purpose = 'edge-sync'")
            .fetch_one(db)
            .await?;
    tls::pem_sha256(&pem).context("controller certificate")
}

async fn config_version(db: &mut PgConnection) -> anyhow::Result<u64> {
    let version: i64 = sqlx::query_scalar("SELECT config_version FROM organization").fetch_one(db).await?;
    Ok(u64::try_from(version)?)
}

/// Makes N identities and records them as subscribed edges in one statement.
async fn make_edges(db: &mut PgConnection, count: usize) -> anyhow::Result<Vec<EdgeIdentity>> {
    let mut identities = Vec::with_capacity(count);
    let (mut ids, mut names, mut fqdns, mut hashes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for index in 0..count {
        let name = format!("edge{index:05}");
        let fqdn = format!("{name}.bench.example");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(vec![fqdn.clone()])?;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let certificate = params.self_signed(&key)?;
        hashes.push(domainsec_model::Fingerprint::of(certificate.der()).into_string());
        ids.push(uuid::Uuid::new_v4());
        names.push(name);
        fqdns.push(fqdn);
        identities
            .push(EdgeIdentity::from_parts(CertificateDer::from(certificate.der().to_vec()), key.serialize_der()));
    }
    sqlx::query(
        "INSERT INTO edges (id, name, fqdn, certificate_sha256, subscribed_at)
         SELECT *, now() FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[])",
    )
    .bind(&ids)
    .bind(&names)
    .bind(&fqdns)
    .bind(&hashes)
    .execute(&mut *db)
    .await?;
    sqlx::query("SELECT pg_notify('domainsec_edges', '')").execute(db).await?;
    Ok(identities)
}

/// One simulated edge: connect, Hello, ACK every snapshot, reconnect with the
/// edge agent's backoff and jitter.
async fn simulate_edge(
    identity: EdgeIdentity,
    pinned: Arc<PinnedControllers>,
    clock: Arc<Mutex<EdgeClock>>,
    gate: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) {
    let mut applied = 0u64;
    let mut attempt = 0u32;
    let endpoint = format!("127.0.0.1:{EDGE_PORT}");
    while !*stop.borrow() {
        let permit = gate.acquire().await;
        let channel = tls::connect(&endpoint, &identity, pinned.clone(), false).await;
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let hello = pb::Hello { applied_version: applied, ..Default::default() };
        let _ = sender.send(pb::EdgeMessage { kind: Some(Kind::Hello(hello)) }).await;
        let stream = match channel {
            Ok(channel) => EdgeSyncClient::new(channel).sync(ReceiverStream::new(receiver)).await.ok(),
            Err(_) => None,
        };
        drop(permit);
        if let Some(response) = stream {
            attempt = 0;
            if let Ok(mut clock) = clock.lock() {
                clock.streams.push(SystemTime::now());
            }
            let mut inbound = response.into_inner();
            while let Ok(Some(message)) = inbound.message().await {
                let Some(pb::controller_message::Kind::Snapshot(snapshot)) = message.kind else { continue };
                if let Ok(mut clock) = clock.lock() {
                    clock.received.push((snapshot.version, SystemTime::now()));
                }
                applied = snapshot.version;
                let ack = pb::Ack {
                    version: snapshot.version,
                    section_digests: pb::section_digests(&snapshot).into_iter().collect(),
                };
                if sender.send(pb::EdgeMessage { kind: Some(Kind::Ack(ack)) }).await.is_err() {
                    break;
                }
            }
        }
        tokio::time::sleep(backoff(attempt, Duration::from_secs(30))).await;
        attempt = attempt.saturating_add(1);
    }
}

async fn wait_all(
    clocks: &[Arc<Mutex<EdgeClock>>],
    what: &str,
    limit: Duration,
    done: impl Fn(&EdgeClock) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let pending = clocks.iter().filter(|c| c.lock().map(|c| !done(&c)).unwrap_or(true)).count();
        if pending == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what}: {pending} edges still pending after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}
