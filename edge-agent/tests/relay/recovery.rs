//! Nothing lost: the real `domainsec-edge` process, subscribed to a real
//! controller, killed with SIGKILL after answering `250` and before delivering.

use std::{path::Path, process::Stdio};

use controller::testing::TestController;
use sqlx::PgPool;
use tokio::{net::TcpListener, process::Child};

use super::support::*;

const MESSAGES: usize = 20;

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_killed_edge_delivers_every_accepted_message_after_restart(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hub = subscribed_hub_edge(&controller, &data).await;
    // The next hop is down while the edge takes the mail.
    let sink_port = free_port();
    let settings = dir.path().join("edge.toml");
    std::fs::write(
        &settings,
        format!(
            "[queue]\nretry_initial = \"200ms\"\nretry_max = \"500ms\"\n\n[dns]\nstatic_only = true\n\
             [dns.mx]\n\"woodgrovebank.com\" = [{{ preference = 10, exchange = \"mx.woodgrovebank.com\" }}]\n\
             [dns.hosts]\n\"mx.woodgrovebank.com\" = [\"127.0.0.1:{sink_port}\"]\n"
        ),
    )
    .unwrap();

    let mut edge = spawn_edge(&data, &settings, dir.path(), "first");
    eventually("the edge to listen on FromHub", || async move {
        tokio::net::TcpStream::connect(hub).await.ok().map(|_| ())
    })
    .await;
    let mut client = Client::connect(hub).await;
    client.command("EHLO hub.contoso.com", 250).await;
    for n in 0..MESSAGES {
        let reply = client
            .send_message(
                "ted@contoso.com",
                &["kim@woodgrovebank.com"],
                &format!("Subject: message {n}\r\n\r\nbody {n}"),
            )
            .await;
        assert!(reply.starts_with("250 2.6.0"), "{reply}");
    }
    edge.kill().await.unwrap(); // SIGKILL: no shutdown path runs.

    let sink = Sink::start_on(TcpListener::bind(("127.0.0.1", sink_port)).await.unwrap()).await;
    let mut edge = spawn_edge(&data, &settings, dir.path(), "second");
    let received = sink.wait_for(MESSAGES).await;
    let mut subjects: Vec<String> = received
        .iter()
        .filter_map(|m| m.data.lines().find(|l| l.starts_with("Subject: ")).map(str::to_owned))
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), MESSAGES, "every accepted message arrived");
    edge.kill().await.unwrap();
}

fn spawn_edge(data: &Path, settings: &Path, logs: &Path, name: &str) -> Child {
    let log = std::fs::File::create(logs.join(format!("edge-{name}.log"))).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_domainsec-edge"))
        .args(["run", "--heartbeat-interval", "1s", "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(settings)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}
