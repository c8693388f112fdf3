//! Two controller replicas on one directory, edges whose subscriptions name both,
//! and one replica killed with SIGKILL: its edges go to the other, are in sync at the
//! current version, and fleet status says so (no "connected" rows left behind by the
//! dead replica) within 15 s (issue #16, target 4, with a small fleet).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use domainsec_e2e::*;

const EDGES: [&str; 3] = ["mail1", "mail2", "mail3"];
/// The takeover target: edges back in sync and fleet status right within this.
const TAKEOVER: Duration = Duration::from_secs(15);

/// Fleet status as JSON rows.
async fn fleet(org: &Organization) -> Vec<serde_json::Value> {
    org.json(&["fleet", "status"]).await.as_array().unwrap().clone()
}

/// Polls `check` every 100 ms until it holds, failing after `limit`.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_killed_replicas_edges_are_taken_over_by_the_other_within_15_s() {
    let root = tempfile::tempdir().unwrap();
    let (mut contoso, mut others) = Organization::start_replicated(root.path(), "replicas", "Contoso", 2).await;
    let second = others.remove(0);
    contoso.ok(&["accepted-domain", "add", "contoso.com"]).await;
    let mut edges = Vec::new();
    for edge in EDGES {
        contoso.ok(&["edge", "add", edge, "--fqdn", &format!("{edge}.contoso.com")]).await;
        // The subscription file names both replicas' edge ports, the first replica first.
        let file = contoso.dir.join(format!("{edge}.subscription"));
        let subscription = {
            contoso.ok(&["edge", "new-subscription", edge, "--out", &file.to_string_lossy()]).await;
            std::fs::read_to_string(&file).unwrap()
        };
        assert!(
            subscription.contains(&format!("127.0.0.1:{}", contoso.sync_port))
                && subscription.contains(&format!("127.0.0.1:{}", second.sync_port)),
            "the subscription names both replicas: {subscription}"
        );
        std::fs::remove_file(&file).unwrap();
        edges.push(contoso.start_edge(edge, "[dns]\nstatic_only = true\n").await);
    }
    contoso.wait_in_sync().await;
    let rows = fleet(&contoso).await;
    assert!(rows.iter().all(|r| r["connected"] == true && r["controller"] == "replica-1"), "{rows:#?}");

    // A change through the second replica reaches the edges held by the first.
    let only_second = credential_for(&contoso, second.admin_port);
    let run = tokio::process::Command::new(binary("dsctl"))
        .arg("--credentials")
        .arg(&only_second)
        .args(["transport-config", "set", "--tls-send-domain-secure-list", "fabrikam.com"])
        .output()
        .await
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    contoso.wait_in_sync().await;
    let rows = fleet(&contoso).await;
    assert!(rows.iter().all(|r| r["controller"] == "replica-1"), "the edges did not move: {rows:#?}");

    // SIGKILL the first replica: nothing of it runs to write its edges' disconnection.
    // mail3 is frozen first (its host hangs with the replica's): it cannot reconnect, so
    // only the replica's lease running out can correct its "connected" row.
    let frozen = edges.pop().unwrap();
    frozen.signal("STOP").await;
    let killed = Instant::now();
    contoso.controller.kill_in_place().await;
    let taken_over =
        within(TAKEOVER, "mail1 and mail2 on replica-2 at the current version, mail3 not connected", || async {
            let rows = fleet(&contoso).await;
            let version = rows.first().map_or(0, |r| r["current_version"].as_u64().unwrap_or(0));
            rows.len() == EDGES.len()
                && rows.iter().all(|r| {
                    if r["name"] == "mail3" {
                        r["connected"] == false
                    } else {
                        r["connected"] == true && r["controller"] == second.id.as_str() && r["version_acked"] == version
                    }
                })
        })
        .await;
    println!(
        "takeover: fleet status right {taken_over:.1?} after the kill ({:.1?} with the last check)",
        killed.elapsed()
    );
    frozen.signal("CONT").await;
    edges.push(frozen);

    // A change now (dsctl's credential names both admin ports; the first is dead) reaches every edge.
    contoso.ok(&["transport-config", "set", "--tls-send-domain-secure-list", "woodgrovebank.com"]).await;
    contoso.wait_in_sync().await;
    for edge in edges {
        edge.kill().await;
    }
    second.process.kill().await;
    contoso.database.drop_now().await;
}

/// A copy of `org`'s credential naming only the admin API on `admin_port`.
fn credential_for(org: &Organization, admin_port: u16) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&org.credentials).unwrap();
    let mut replaced = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("controllers") {
                replaced = true;
                format!("controllers = [\"127.0.0.1:{admin_port}\"]")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(replaced, "the credential lists its controllers: {text}");
    let path = org.dir.join(format!("admin-{admin_port}.toml"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}
