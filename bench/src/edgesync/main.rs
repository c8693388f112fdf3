//! EdgeSync benchmark: N simulated edges, each a real mutual-TLS gRPC stream from
//! this process, against real `domainsec-controller` processes on loopback.
//!
//! What it measures (issue #16), each figure next to its target:
//! 1. the controller's cost: with `--pin` (default) the controllers run on core 0 and
//!    this process (the simulated edges, dsctl) and PostgreSQL on core 1, and each
//!    change reports the controllers' CPU ms (from /proc/PID/stat), µs per edge, and
//!    the simulator's share of its core, so a reader sees it was not the bottleneck;
//! 2. change → ACK at the controller, p99 per change and over all changes;
//! 3. controller memory per idle connected edge, and the fleet's connect time;
//! 4. with `--replicas 2`: changes alternately through each replica, then `kill -9` of
//!    the first: its edges back on the second and fleet status right (leases);
//! 5. with `--outage-seconds S`: the controllers' database connection cut for S
//!    seconds (a proxy; a stopped server looks the same to them), a change refused
//!    meanwhile, one committed through another replica they miss, and the time from
//!    the database's return until every edge has it;
//! 6. (single controller) restart → every edge back.
//!
//! Setup shortcut: the edges' certificates are inserted into the directory in bulk
//! instead of N subscription round trips; everything measured goes through the real
//! TLS, gRPC and LISTEN/NOTIFY paths.

mod cpu;
mod proxy;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
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
    /// Simulated edges (each holds a file descriptor here and in its controller: the
    /// open-files limit of both processes bounds it).
    #[arg(long, default_value_t = 10_000)]
    edges: usize,
    /// Changes to time.
    #[arg(long, default_value_t = 5)]
    changes: usize,
    /// Controller replicas (1 or 2); with 2, the first is killed with SIGKILL at the end.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    replicas: u8,
    /// Cut the controllers' database connection this many seconds (0: skip).
    #[arg(long, default_value_t = 0)]
    outage_seconds: u64,
    /// Do not pin: controllers, simulator and PostgreSQL share every core.
    #[arg(long)]
    no_pin: bool,
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
    /// First of the ports used (admin and edge port per replica, then a witness's).
    /// Below Linux's ephemeral range (32768–60999): the simulated edges' own sockets
    /// take ephemeral ports, and a listener started later inside that range can find
    /// its port taken by one of them.
    #[arg(long, default_value_t = 21_150)]
    base_port: u16,
}

/// What each simulated edge reports.
#[derive(Default)]
struct EdgeClock {
    /// Version and arrival time of each snapshot.
    received: Vec<(u64, SystemTime)>,
    /// When each stream was accepted, and on which replica (index).
    streams: Vec<(SystemTime, usize)>,
}

type Clocks = Vec<Arc<Mutex<EdgeClock>>>;

/// One controller process.
struct Controller {
    child: tokio::process::Child,
    pid: u32,
    id: String,
    credentials: PathBuf,
}

const CONTROLLER_CORE: &str = "0";
const OTHERS_CORE: &str = "1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = !args.no_pin && cores >= 2;
    let hz = cpu::ticks_per_second();
    let database_url = database(&args.database_server, "edgesync_bench");
    let mut server = PgConnection::connect(&args.database_server).await.context("connect to PostgreSQL")?;
    sqlx::query("DROP DATABASE IF EXISTS edgesync_bench WITH (FORCE)").execute(&mut server).await?;
    sqlx::query("CREATE DATABASE edgesync_bench").execute(&mut server).await?;
    let _ = std::fs::remove_dir_all(&args.work_dir);
    std::fs::create_dir_all(&args.work_dir)?;
    let state = args.work_dir.join("state");
    let credentials = args.work_dir.join("admin.toml");
    let replicas = usize::from(args.replicas);
    let admin_port = |index: usize| args.base_port + 2 * index as u16;
    let edge_port = |index: usize| args.base_port + 2 * index as u16 + 1;
    let edge_endpoints: Vec<String> = (0..replicas).map(|i| format!("127.0.0.1:{}", edge_port(i))).collect();
    let admin_list = (0..replicas).map(|i| format!("127.0.0.1:{}", admin_port(i))).collect::<Vec<_>>().join(",");
    let status = Command::new(args.bin_dir.join("domainsec-controller"))
        .args(["init", "--org", "Bench", "--database-url", &database_url, "--controller", &admin_list])
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

    // The controllers reach PostgreSQL through a proxy the outage step cuts.
    let upstream = postgres_address(&args.database_server)?;
    let proxy = proxy::DatabaseProxy::start(upstream).await?;
    let proxied_url = database(&format!("postgres://postgres@{}/postgres", proxy.address), "edgesync_bench");
    let mut pinned_postgres = Vec::new();
    if pin {
        cpu::pin(&std::process::id().to_string(), OTHERS_CORE);
        for pid in cpu::postgres_pids() {
            if cpu::pin(&pid, OTHERS_CORE) {
                pinned_postgres.push(pid);
            }
        }
    }
    let spawn = |index: usize, url: &str, endpoints: &[String]| {
        spawn_controller(&args, url, &state, index, endpoints, admin_port(index), edge_port(index), pin)
    };
    let mut controllers = Vec::new();
    for index in 0..replicas {
        let mut controller = spawn(index, &proxied_url, &edge_endpoints)?;
        controller.credentials = credential_for(&credentials, &format!("127.0.0.1:{}", admin_port(index)))?;
        wait_for_admin(&args, &controller.credentials).await?;
        controllers.push(controller);
    }
    let mut db = PgConnection::connect(&database_url).await?;
    let controller_sha256 = controller_certificate(&mut db).await?;

    println!(
        "== EdgeSync benchmark: {} simulated edges, {replicas} controller replica(s), {cores} cores; {}",
        args.edges,
        if pin {
            format!(
                "controllers pinned to core {CONTROLLER_CORE}, simulator + dsctl + PostgreSQL ({} processes) to core {OTHERS_CORE}",
                pinned_postgres.len()
            )
        } else {
            "nothing pinned".to_owned()
        }
    );
    let started = Instant::now();
    let identities = make_edges(&mut db, args.edges).await?;
    println!("setup: {} edge identities recorded in {:.1?}", identities.len(), started.elapsed());
    let pids: Vec<u32> = controllers.iter().map(|c| c.pid).collect();
    let baseline: u64 = pids.iter().map(|pid| rss_kib(*pid).unwrap_or(0)).sum();

    let clocks: Clocks = (0..args.edges).map(|_| Arc::new(Mutex::new(EdgeClock::default()))).collect();
    let pinned_controllers = Arc::new(PinnedControllers::new([controller_sha256]));
    let endpoints = Arc::new(edge_endpoints.clone());
    let (stop_tx, stop) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    let connect_started = Instant::now();
    let before_connect = cpu::Sample::take(&pids);
    let mut tasks = Vec::new();
    for (index, (identity, clock)) in identities.into_iter().zip(&clocks).enumerate() {
        tasks.push(tokio::spawn(simulate_edge(
            identity,
            pinned_controllers.clone(),
            endpoints.clone(),
            index % replicas,
            clock.clone(),
            gate.clone(),
            stop.clone(),
        )));
    }
    let current = config_version(&mut db).await?;
    wait_all(&clocks, "every edge connected and in sync", Duration::from_secs(600), |c| {
        c.received.iter().any(|(v, _)| *v >= current)
    })
    .await?;
    let connect_time = connect_started.elapsed();
    let connect_cpu = cpu::Spent::between(before_connect, cpu::Sample::take(&pids), hz);
    let mut connect_samples = arrival_after(&clocks, connect_started, |c| c.received.first().map(|(_, at)| *at));
    connect_samples.sort_by(f64::total_cmp);
    println!(
        "connect from cold: all {} edges streaming and in sync in {:.1?} ({:.0} edges/s; p99 {:.1} s); controllers' CPU {:.0} ms ({:.0} µs per edge)",
        args.edges,
        connect_time,
        args.edges as f64 / connect_time.as_secs_f64(),
        pct(&connect_samples, 99.0),
        connect_cpu.controllers_ms,
        connect_cpu.controllers_ms * 1000.0 / args.edges as f64
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let connected: u64 = pids.iter().map(|pid| rss_kib(*pid).unwrap_or(0)).sum();
    let per_edge_kib = connected.saturating_sub(baseline) as f64 / args.edges as f64;
    println!(
        "memory: controllers' RSS {} MiB with no edges, {} MiB with {} idle edges: {per_edge_kib:.1} KiB per edge",
        baseline / 1024,
        connected / 1024,
        args.edges,
    );

    // Changes, alternately through each replica.
    let mut all_acks = Vec::new();
    let mut change_p99 = Vec::new();
    let mut per_change_cpu = Vec::new();
    for round in 0..args.changes {
        let through = &controllers[round % controllers.len()];
        let domain = format!("partner{round}.example");
        let before = cpu::Sample::take(&pids);
        let output =
            dsctl(&args, &through.credentials, &["transport-config", "set", "--tls-send-domain-secure-list", &domain])
                .await?;
        if !output.status.success() {
            bail!("dsctl failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let version = config_version(&mut db).await?;
        let committed = committed_at(&mut db, version).await?;
        wait_all(&clocks, "every edge got the change", Duration::from_secs(60), |c| {
            c.received.iter().any(|(v, _)| *v >= version)
        })
        .await?;
        let mut acks = wait_for_acks(&mut db, version, committed, args.edges).await?;
        let spent = cpu::Spent::between(before, cpu::Sample::take(&pids), hz);
        acks.sort_by(f64::total_cmp);
        println!(
            "change {} (through {}): version {version}: ACK p50 {:.0} ms, p99 {:.0} ms, last {:.0} ms; controllers' CPU {:.0} ms = {:.1} µs per edge; simulator {:.0} ms CPU ({:.0}% of its core over {:.0} ms), PostgreSQL {:.0} ms",
            round + 1,
            through.id,
            pct(&acks, 50.0) * 1e3,
            pct(&acks, 99.0) * 1e3,
            pct(&acks, 100.0) * 1e3,
            spent.controllers_ms,
            spent.controllers_ms * 1000.0 / args.edges as f64,
            spent.simulator_ms,
            100.0 * spent.simulator_ms / spent.wall_ms.max(1.0),
            spent.wall_ms,
            spent.postgres_ms
        );
        change_p99.push(pct(&acks, 99.0));
        per_change_cpu.push(spent.controllers_ms);
        all_acks.extend(acks);
    }
    all_acks.sort_by(f64::total_cmp);
    let worst_p99 = change_p99.iter().copied().fold(0.0, f64::max);
    let mean_cpu = per_change_cpu.iter().sum::<f64>() / per_change_cpu.len().max(1) as f64;

    let outage = if args.outage_seconds > 0 {
        Some(outage(&args, &proxy, &database_url, &state, &controllers, &clocks, &mut db, edge_port(3)).await?)
    } else {
        None
    };

    let takeover =
        if replicas >= 2 { Some(kill_first_replica(&mut controllers, &clocks, &mut db, &args).await?) } else { None };
    let restart = if replicas == 1 {
        // Restart: stop the controller, start it again, time every edge's return.
        let restart_from = SystemTime::now();
        let mut old = controllers.remove(0);
        terminate(&mut old.child).await;
        let restarted_at = SystemTime::now();
        let mut fresh = spawn(0, &proxied_url, &edge_endpoints)?;
        fresh.credentials = old.credentials.clone();
        controllers.push(fresh);
        let current = config_version(&mut db).await?;
        wait_all(&clocks, "every edge back after the restart", Duration::from_secs(300), |c| {
            c.streams.iter().any(|(at, _)| *at > restarted_at)
        })
        .await?;
        let mut back: Vec<f64> = clocks
            .iter()
            .filter_map(|c| {
                let clock = c.lock().ok()?;
                clock.streams.iter().find(|(at, _)| *at > restarted_at).map(|(at, _)| epoch(*at) - epoch(restart_from))
            })
            .collect();
        back.sort_by(f64::total_cmp);
        println!(
            "restart: edges back (stream open, Hello at version {current}): p50 {:.1} s, p99 {:.1} s, max {:.1} s",
            pct(&back, 50.0),
            pct(&back, 99.0),
            pct(&back, 100.0),
        );
        Some(pct(&back, 99.0))
    } else {
        None
    };

    println!("== results ({} edges, {replicas} replica(s))", args.edges);
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    println!(
        "controller cost per change: {mean_cpu:.0} ms CPU ({:.1} µs per edge), mean of {} changes",
        mean_cpu * 1000.0 / args.edges as f64,
        per_change_cpu.len()
    );
    println!(
        "change -> ACK: p50 {:.0} ms, p99 {:.0} ms over {} ACKs; worst change's p99 {:.0} ms (target <= {} ms): {}",
        pct(&all_acks, 50.0) * 1e3,
        pct(&all_acks, 99.0) * 1e3,
        all_acks.len(),
        worst_p99 * 1e3,
        if args.edges > 10_000 { 2000 } else { 1000 },
        verdict(worst_p99 <= if args.edges > 10_000 { 2.0 } else { 1.0 })
    );
    println!("memory per idle edge: {per_edge_kib:.1} KiB (target <= 40 KiB): {}", verdict(per_edge_kib <= 40.0));
    println!(
        "connect from cold: p99 {:.1} s (target <= 60 s): {}",
        pct(&connect_samples, 99.0),
        verdict(pct(&connect_samples, 99.0) <= 60.0)
    );
    if let Some(p99) = restart {
        println!("restart -> back, p99 {p99:.1} s (target <= 60 s): {}", verdict(p99 <= 60.0));
    }
    if let Some((reconnected, fleet_right)) = takeover {
        println!(
            "kill -9 of a replica -> its edges on the other at the current version, p99 {reconnected:.1} s; fleet status right after {fleet_right:.1} s (target <= 15 s): {}",
            verdict(reconnected <= 15.0 && fleet_right <= 15.0)
        );
    }
    if let Some(caught_up) = outage {
        println!(
            "database outage of {} s -> every edge at the missed version {caught_up:.1} s after the database returned (target <= 10 s): {}",
            args.outage_seconds,
            verdict(caught_up <= 10.0)
        );
    }

    let _ = stop_tx.send(true);
    for controller in &mut controllers {
        terminate(&mut controller.child).await;
    }
    for task in tasks {
        task.abort();
    }
    drop(db);
    sqlx::query("DROP DATABASE IF EXISTS edgesync_bench WITH (FORCE)").execute(&mut server).await?;
    let all_cores = format!("0-{}", cores - 1);
    for pid in cpu::postgres_pids() {
        cpu::pin(&pid, &all_cores);
    }
    Ok(())
}

/// The outage: the controllers' database connection cut; a change through them is
/// refused; one committed through a witness replica (direct connection, no edges) is
/// missed; then the time from the database's return until every edge has it.
#[allow(clippy::too_many_arguments)]
async fn outage(
    args: &Args,
    proxy: &proxy::DatabaseProxy,
    database_url: &str,
    state: &Path,
    controllers: &[Controller],
    clocks: &Clocks,
    db: &mut PgConnection,
    witness_port: u16,
) -> anyhow::Result<f64> {
    let witness_endpoints = vec![format!("127.0.0.1:{}", witness_port + 1)];
    let mut witness = spawn_controller(
        args,
        database_url,
        state,
        9,
        &witness_endpoints,
        witness_port,
        witness_port + 1,
        !args.no_pin,
    )?;
    witness.credentials = credential_for(&args.work_dir.join("admin.toml"), &format!("127.0.0.1:{witness_port}"))?;
    wait_for_admin(args, &witness.credentials).await?;
    let streams_before = stream_count(clocks);
    let before = config_version(db).await?;
    proxy.set(false);
    let cut_at = Instant::now();
    println!("outage: database cut for the controllers for {} s", args.outage_seconds);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let refused = dsctl(
        args,
        &controllers[0].credentials,
        &["transport-config", "set", "--tls-send-domain-secure-list", "outage.example"],
    )
    .await?;
    let message = String::from_utf8_lossy(&refused.stderr).trim().to_owned();
    println!("outage: a change through {}: exit {:?}: {message}", controllers[0].id, refused.status.code());
    if refused.status.success() || !message.contains("directory unreachable") {
        bail!("the change during the outage was not refused with UNAVAILABLE: directory unreachable");
    }
    let missed = dsctl(
        args,
        &witness.credentials,
        &["transport-config", "set", "--tls-send-domain-secure-list", "missed.example"],
    )
    .await?;
    if !missed.status.success() {
        bail!("the witness's change failed: {}", String::from_utf8_lossy(&missed.stderr));
    }
    let missed_version = config_version(db).await?;
    println!("outage: version {missed_version} committed through a witness replica the controllers cannot hear");
    let remaining = Duration::from_secs(args.outage_seconds).saturating_sub(cut_at.elapsed());
    tokio::time::sleep(remaining).await;
    let behind =
        clocks.iter().filter(|c| c.lock().is_ok_and(|c| c.received.iter().all(|(v, _)| *v < missed_version))).count();
    let reconnects = stream_count(clocks) - streams_before;
    proxy.set(true);
    let back = Instant::now();
    wait_all(clocks, "every edge at the missed version after the outage", Duration::from_secs(120), |c| {
        c.received.iter().any(|(v, _)| *v >= missed_version)
    })
    .await?;
    let caught_up = back.elapsed().as_secs_f64();
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM config_versions WHERE version > $1 AND version < $2")
        .bind(i64::try_from(before)?)
        .bind(i64::try_from(missed_version)?)
        .fetch_one(&mut *db)
        .await
        .unwrap_or(-1);
    println!(
        "outage: after {:.0} s cut: {behind} edges still at an older version (serving their snapshot), {reconnects} stream reconnects; partial writes of the refused change: {written}; every edge at version {missed_version} {caught_up:.1} s after the database returned",
        cut_at.elapsed().as_secs_f64() - caught_up
    );
    terminate(&mut witness.child).await;
    Ok(caught_up)
}

/// `kill -9` of the first replica: the time until each of its edges has a stream on
/// the second (its Hello says it runs the current version), and until the directory's
/// fleet view (as `dsctl fleet status` computes it) shows every edge on the second.
async fn kill_first_replica(
    controllers: &mut Vec<Controller>,
    clocks: &Clocks,
    db: &mut PgConnection,
    args: &Args,
) -> anyhow::Result<(f64, f64)> {
    let current = config_version(db).await?;
    let on_first: Vec<usize> = clocks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.lock().is_ok_and(|c| c.streams.last().is_some_and(|(_, replica)| *replica == 0)))
        .map(|(i, _)| i)
        .collect();
    let mut first = controllers.remove(0);
    let killed_at = SystemTime::now();
    let killed = Instant::now();
    let _ = first.child.start_kill();
    let _ = first.child.wait().await;
    println!("kill -9 {} (pid {}), holding {} of {} edges", first.id, first.pid, on_first.len(), clocks.len());
    let second = controllers[0].id.clone();
    let fleet_right = loop {
        let (on_second, elsewhere, in_sync): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE s.connected AND r.live_until > now() AND s.controller = $1),
                    count(*) FILTER (WHERE s.connected AND r.live_until > now() AND s.controller <> $1),
                    count(*) FILTER (WHERE s.last_version_acked >= $2)
             FROM edge_sync_state s LEFT JOIN controller_replicas r ON r.id = s.controller",
        )
        .bind(&second)
        .bind(i64::try_from(current)?)
        .fetch_one(&mut *db)
        .await?;
        if on_second as usize == clocks.len() && elsewhere == 0 && in_sync as usize == clocks.len() {
            break killed.elapsed().as_secs_f64();
        }
        if killed.elapsed() > Duration::from_secs(180) {
            bail!("fleet status not right 180 s after the kill: {on_second} on {second}, {elsewhere} elsewhere");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut back: Vec<f64> = on_first
        .iter()
        .filter_map(|i| {
            let clock = clocks[*i].lock().ok()?;
            clock
                .streams
                .iter()
                .find(|(at, replica)| *at > killed_at && *replica == 1)
                .map(|(at, _)| epoch(*at) - epoch(killed_at))
        })
        .collect();
    back.sort_by(f64::total_cmp);
    let status = dsctl(args, &controllers[0].credentials, &["-o", "json", "fleet", "status"]).await?;
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
    let shown = rows
        .as_array()
        .map_or(0, |rows| rows.iter().filter(|r| r["connected"] == true && r["controller"] == second.as_str()).count());
    println!(
        "takeover: {} edges back on {second}: p50 {:.1} s, p99 {:.1} s, max {:.1} s; fleet status right after {fleet_right:.1} s; `dsctl fleet status` shows {shown}/{} connected to {second}",
        back.len(),
        pct(&back, 50.0),
        pct(&back, 99.0),
        pct(&back, 100.0),
        clocks.len()
    );
    Ok((pct(&back, 99.0), fleet_right))
}

fn stream_count(clocks: &Clocks) -> usize {
    clocks.iter().map(|c| c.lock().map_or(0, |c| c.streams.len())).sum()
}

/// Seconds from `from` to each edge's `event`.
fn arrival_after(clocks: &Clocks, from: Instant, event: impl Fn(&EdgeClock) -> Option<SystemTime>) -> Vec<f64> {
    let from_wall = SystemTime::now() - from.elapsed();
    clocks
        .iter()
        .filter_map(|c| {
            let clock = c.lock().ok()?;
            event(&clock).map(|at| epoch(at) - epoch(from_wall))
        })
        .collect()
}

/// Waits until the controllers have recorded every edge's ACK of `version`; returns
/// each ACK's delay after the commit, in seconds.
async fn wait_for_acks(db: &mut PgConnection, version: u64, committed: f64, edges: usize) -> anyhow::Result<Vec<f64>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let acks: Vec<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM acked_at)::float8 - $2 FROM edge_sync_state WHERE last_version_acked >= $1",
        )
        .bind(i64::try_from(version)?)
        .bind(committed)
        .fetch_all(&mut *db)
        .await?;
        if acks.len() >= edges {
            return Ok(acks);
        }
        if Instant::now() > deadline {
            bail!("only {} of {edges} ACKs of version {version} recorded after 30 s", acks.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn committed_at(db: &mut PgConnection, version: u64) -> anyhow::Result<f64> {
    Ok(sqlx::query_scalar("SELECT EXTRACT(EPOCH FROM at)::float8 FROM audit_log WHERE config_version = $1")
        .bind(i64::try_from(version)?)
        .fetch_one(db)
        .await?)
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

/// host:port of the PostgreSQL server URL (loopback only, as everything here).
fn postgres_address(server: &str) -> anyhow::Result<SocketAddr> {
    let rest = server.split_once("://").map_or(server, |(_, rest)| rest);
    let host_port = rest.split('/').next().unwrap_or(rest);
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let host_port = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port.parse().with_context(|| format!("the PostgreSQL server {host_port:?} is not an IP:port"))
}

#[allow(clippy::too_many_arguments)]
fn spawn_controller(
    args: &Args,
    database_url: &str,
    state: &Path,
    index: usize,
    edge_endpoints: &[String],
    admin_port: u16,
    edge_port: u16,
    pin: bool,
) -> anyhow::Result<Controller> {
    let binary = args.bin_dir.join("domainsec-controller");
    let mut command = if pin {
        let mut command = Command::new("taskset");
        command.args(["-c", CONTROLLER_CORE]).arg(&binary);
        command
    } else {
        Command::new(&binary)
    };
    let id = if index == 9 { "witness".to_owned() } else { format!("replica-{}", index + 1) };
    command
        .args(["serve", "--database-url", database_url])
        .args([
            "--admin-listen",
            &format!("127.0.0.1:{admin_port}"),
            "--edge-listen",
            &format!("127.0.0.1:{edge_port}"),
        ])
        .args(["--controller-id", &id])
        .arg("--state-dir")
        .arg(state);
    for endpoint in edge_endpoints {
        command.args(["--edge-endpoint", endpoint]);
    }
    let child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("start domainsec-controller")?;
    // taskset execs the controller: the pid is the controller's.
    let pid = child.id().context("controller pid")?;
    Ok(Controller { child, pid, id, credentials: PathBuf::new() })
}

/// A copy of the credential naming only `admin` (dsctl through that replica).
fn credential_for(credentials: &Path, admin: &str) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(credentials)?;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("controllers") {
                format!("controllers = [\"{admin}\"]")
            } else {
                line.to_owned()
            }
        })
        .collect();
    let path = credentials.with_file_name(format!("admin-{}.toml", admin.replace([':', '.'], "-")));
    std::fs::write(&path, lines.join("\n") + "\n")?;
    Ok(path)
}

async fn dsctl(args: &Args, credentials: &Path, command: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(args.bin_dir.join("dsctl")).arg("--credentials").arg(credentials).args(command).output().await?)
}

async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
    }
    if tokio::time::timeout(Duration::from_secs(20), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

async fn wait_for_admin(args: &Args, credentials: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if dsctl(args, credentials, &["whoami"]).await?.status.success() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the controller did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn controller_certificate(db: &mut PgConnection) -> anyhow::Result<String> {
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

/// One simulated edge: connect (starting with replica `first`), Hello, ACK every
/// snapshot; on a lost stream the next endpoint, after the edge agent's backoff.
async fn simulate_edge(
    identity: EdgeIdentity,
    pinned: Arc<PinnedControllers>,
    endpoints: Arc<Vec<String>>,
    first: usize,
    clock: Arc<Mutex<EdgeClock>>,
    gate: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) {
    let mut applied = 0u64;
    let mut attempt = 0u32;
    let mut index = first;
    while !*stop.borrow() {
        let replica = index % endpoints.len();
        let permit = gate.acquire().await;
        let channel = tls::connect(&endpoints[replica], &identity, pinned.clone(), false).await;
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
                clock.streams.push((SystemTime::now(), replica));
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
        index += 1;
        tokio::time::sleep(backoff(attempt, Duration::from_secs(30))).await;
        attempt = attempt.saturating_add(1);
    }
}

async fn wait_all(
    clocks: &Clocks,
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
