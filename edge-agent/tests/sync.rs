//! Subscribe, push, ACK, NACK, offline edges, restarts and replicas.

use controller::testing::TestController;
use proto::admin as pb;
use sqlx::PgPool;

use crate::support::{TestEdge, current_version, eventually, fleet_row};

fn secure_list(domains: &[&str]) -> pb::SetTransportConfigRequest {
    pb::SetTransportConfigRequest {
        tls_send_domain_secure_list: Some(pb::StringList { values: domains.iter().map(|d| (*d).to_owned()).collect() }),
        ..Default::default()
    }
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_change_reaches_subscribed_edges_and_is_acked(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let mut mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let mut mail2 = TestEdge::subscribe(&controller, "mail2").await;
    let version = current_version(&mut admin).await;
    mail1.wait_for_version(version).await;
    mail2.wait_for_version(version).await;

    let changed = admin.set_transport_config(secure_list(&["woodgrovebank.com"])).await.unwrap().into_inner();
    for edge in [&mut mail1, &mut mail2] {
        let config = edge.wait_for_version(changed.config_version).await;
        assert_eq!(config.transport.tls_send_domain_secure_list[0].to_string(), "woodgrovebank.com");
    }
    for name in ["mail1", "mail2"] {
        let row = eventually("the ACK in fleet status", || {
            let mut admin = admin.clone();
            async move { fleet_row(&mut admin, name).await.filter(|r| r.version_acked == changed.config_version) }
        })
        .await;
        assert!(row.connected, "{row:?}");
        assert_eq!(row.state, "subscribed");
        assert!(row.nack_reason.is_empty());
    }
    // Heartbeats carry counters.
    let row =
        eventually("a heartbeat with counters", || {
            let mut admin = admin.clone();
            async move {
                fleet_row(&mut admin, "mail1").await.filter(|r| r.counters.contains_key("edgesync.snapshots_applied"))
            }
        })
        .await;
    assert!(row.counters["edgesync.snapshots_applied"] >= 1);
    let tests = admin.test_edge_sync(pb::TestEdgeSyncRequest::default()).await.unwrap().into_inner();
    assert!(tests.edges.iter().all(|t| t.in_sync), "{tests:?}");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn an_edge_that_cannot_apply_a_value_nacks_and_keeps_its_last_good_config(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let mut mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let good = current_version(&mut admin).await;
    mail1.wait_for_version(good).await;

    // 192.0.2.1 (TEST-NET-1) is on no host: the edge cannot listen there.
    let connector = admin
        .create_receive_connector(pb::ReceiveConnectorSpec {
            edge: "mail1".into(),
            name: "Inet".into(),
            bindings: vec!["192.0.2.1:25".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let bad = connector.config_version;
    let row = eventually("the NACK in fleet status", || {
        let mut admin = admin.clone();
        async move { fleet_row(&mut admin, "mail1").await.filter(|r| r.nack_version == bad) }
    })
    .await;
    assert!(
        row.nack_reason.starts_with("receive connector Inet: cannot listen on 192.0.2.1:25"),
        "{}",
        row.nack_reason
    );
    assert_eq!(row.version_acked, good, "the edge still runs the last good version");
    assert_eq!(mail1.version(), good);
    let tests =
        admin.test_edge_sync(pb::TestEdgeSyncRequest { names: vec!["mail1".into()] }).await.unwrap().into_inner();
    let test = &tests.edges[0];
    assert!(!test.in_sync);
    assert_eq!(test.differing_sections, vec!["receive_connectors".to_owned()]);
    assert!(test.detail.contains("refused version"), "{}", test.detail);

    // Fixing the value is applied and ACKed.
    let fixed = admin
        .update_receive_connector(pb::UpdateReceiveConnectorRequest {
            edge: "mail1".into(),
            name: "Inet".into(),
            bindings: Some(pb::StringList { values: vec!["127.0.0.1:2525".into()] }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let config = mail1.wait_for_version(fixed.config_version).await;
    assert_eq!(config.receive_connectors[0].bindings[0].to_string(), "127.0.0.1:2525");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn an_edge_restarted_while_the_controller_is_down_serves_its_stored_config(pool: PgPool) {
    let mut controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let mut mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let version = admin.set_transport_config(secure_list(&["fabrikam.com"])).await.unwrap().into_inner().config_version;
    mail1.wait_for_version(version).await;
    let dir = mail1.stop().await;
    controller.stop().await;

    let restarted = TestEdge::start(dir);
    assert_eq!(restarted.version(), version, "served from the data dir before any controller answers");
    let config = restarted.config.borrow().clone().unwrap();
    assert_eq!(config.transport.tls_send_domain_secure_list[0].to_string(), "fabrikam.com");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn edges_reconnect_after_a_controller_restart(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let mut admin = controller.org_admin().await;
    mail1.wait_for_version(current_version(&mut admin).await).await;

    let controller = controller.restart().await;
    let mut admin = controller.org_admin().await;
    let version =
        admin.set_transport_config(secure_list(&["tailspintoys.com"])).await.unwrap().into_inner().config_version;
    let config = mail1.wait_for_version(version).await;
    assert_eq!(config.transport.tls_send_domain_secure_list[0].to_string(), "tailspintoys.com");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn two_replicas_on_one_database_both_push_a_change(pool: PgPool) {
    let first = TestController::start(pool).await;
    let second = first.replica().await;
    // Each edge's subscription names the replica that issued it.
    let mut mail1 = TestEdge::subscribe(&first, "mail1").await;
    let mut mail2 = TestEdge::subscribe(&second, "mail2").await;
    let mut admin = first.org_admin().await;
    let start = current_version(&mut admin).await;
    mail1.wait_for_version(start).await;
    mail2.wait_for_version(start).await;
    let holder = format!("test@{}", second.edge_address);
    eventually("mail2 held by the second replica", || {
        let (mut admin, holder) = (admin.clone(), holder.clone());
        async move { fleet_row(&mut admin, "mail2").await.filter(|r| r.controller == holder) }
    })
    .await;

    // A change through the first replica reaches the edge on the second one (LISTEN/NOTIFY).
    let version =
        admin.set_transport_config(secure_list(&["woodgrovebank.com"])).await.unwrap().into_inner().config_version;
    mail1.wait_for_version(version).await;
    mail2.wait_for_version(version).await;
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn start_edge_synchronization_pushes_and_reports_each_edge(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let mut mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let version = current_version(&mut admin).await;
    mail1.wait_for_version(version).await;
    admin.create_edge(pb::CreateEdgeRequest { name: "mail9".into(), fqdn: "mail9.contoso.com".into() }).await.unwrap();
    let response = admin
        .sync_edges(pb::SyncEdgesRequest { names: vec![], all: true, timeout_seconds: 10 })
        .await
        .unwrap()
        .into_inner();
    let outcome = |edge: &str| response.results.iter().find(|r| r.edge == edge).unwrap().outcome.clone();
    assert_eq!(outcome("mail1"), "acked");
    assert_eq!(outcome("mail9"), "not-connected");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_rotated_controller_certificate_is_trusted_before_it_is_presented(pool: PgPool) {
    use controller::{rotation, state_dir::StateDir};
    let controller = TestController::start(pool).await;
    let state = StateDir::new(controller.dir.path().join("state"));
    let mut admin = controller.org_admin().await;
    let mut mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let mail2 = TestEdge::subscribe(&controller, "mail2").await;
    mail1.wait_for_version(current_version(&mut admin).await).await;
    let offline = mail2.stop().await;

    let staged = rotation::stage(&controller.pool, &state).await.unwrap();
    mail1.wait_for_version(staged).await;
    eventually("mail1's ACK recorded", || {
        let mut admin = admin.clone();
        async move { fleet_row(&mut admin, "mail1").await.filter(|r| r.version_acked >= staged) }
    })
    .await;
    // mail2 is offline and has not learnt the new certificate: activating now would cut it off.
    let error = rotation::activate(&controller.pool, &state).await.unwrap_err().to_string();
    assert!(error.contains("edge(s) mail2 have not ACKed version"), "{error}");

    let mut mail2 = TestEdge::start(offline);
    mail2.wait_for_version(staged).await;
    eventually("both ACKs recorded", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.fleet_status(proto::admin::FleetStatusRequest {}).await.unwrap().into_inner();
            status.edges.iter().all(|e| e.version_acked >= staged).then_some(())
        }
    })
    .await;
    let new_sha256 = rotation::activate(&controller.pool, &state).await.unwrap();

    // After the restart the controller presents the new certificate; the edges trust it.
    let controller = controller.restart().await;
    let mut admin = controller.org_admin().await;
    let fingerprints = controller::edgesync::controller_fingerprints(&controller.pool).await.unwrap();
    assert_eq!(fingerprints, vec![new_sha256]);
    let version =
        admin.set_transport_config(secure_list(&["woodgrovebank.com"])).await.unwrap().into_inner().config_version;
    mail1.wait_for_version(version).await;
    mail2.wait_for_version(version).await;
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_change_arrives_even_when_the_controllers_listen_connection_dies(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let mut mail1 = TestEdge::subscribe(&controller, "mail1").await;
    mail1.wait_for_version(current_version(&mut admin).await).await;
    // Kill the controller's LISTEN session, as a database failover or network cut would.
    let database: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&controller.pool).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .bind(&database)
    .fetch_all(&controller.pool)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "the controller listens on its own connection");
    let version =
        admin.set_transport_config(secure_list(&["woodgrovebank.com"])).await.unwrap().into_inner().config_version;
    let config = mail1.wait_for_version(version).await;
    assert_eq!(config.transport.tls_send_domain_secure_list[0].to_string(), "woodgrovebank.com");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn sync_and_rotation_commands_refuse_what_makes_no_sense(pool: PgPool) {
    use controller::{rotation, state_dir::StateDir};
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let both = pb::SyncEdgesRequest { names: vec!["mail1".into()], all: true, timeout_seconds: 1 };
    assert_eq!(admin.sync_edges(both).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let neither = pb::SyncEdgesRequest { names: vec![], all: false, timeout_seconds: 1 };
    assert_eq!(admin.sync_edges(neither).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let unknown = pb::SyncEdgesRequest { names: vec!["mail7".into()], all: false, timeout_seconds: 1 };
    assert_eq!(admin.sync_edges(unknown).await.unwrap_err().code(), tonic::Code::NotFound);

    let state = StateDir::new(controller.dir.path().join("state"));
    let error = rotation::activate(&controller.pool, &state).await.unwrap_err().to_string();
    assert!(error.starts_with("no staged certificate"), "{error}");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_stopping_replica_releases_its_edges_to_the_other_one(pool: PgPool) {
    use edge::store::DataDir;
    let mut first = TestController::start(pool).await;
    let second = first.replica().await;
    // An edge whose subscription names both replicas, the first one first.
    let mut admin = first.org_admin().await;
    let file = crate::support::subscription_file(&mut admin, first.dir.path(), "mail1").await;
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    edge::control::subscribe::subscribe(&file, &data).await.unwrap();
    let mut trust = data.load_trust().unwrap();
    trust.endpoints = vec![first.edge_address.to_string(), second.edge_address.to_string()];
    data.store_trust(&trust).unwrap();
    let mut mail1 = TestEdge::start(dir);
    mail1.wait_for_version(current_version(&mut admin).await).await;
    let first_holder = format!("test@{}", first.edge_address);
    eventually("mail1 held by the first replica", || {
        let (mut admin, holder) = (admin.clone(), first_holder.clone());
        async move { fleet_row(&mut admin, "mail1").await.filter(|r| r.connected && r.controller == holder) }
    })
    .await;

    // The first replica stops: it releases the stream, the edge goes to the second one,
    // and the fleet shows it there (never "connected" to the stopped one).
    first.stop().await;
    let mut admin = second.org_admin().await;
    let second_holder = format!("test@{}", second.edge_address);
    eventually("mail1 held by the second replica", || {
        let (mut admin, holder) = (admin.clone(), second_holder.clone());
        async move { fleet_row(&mut admin, "mail1").await.filter(|r| r.connected && r.controller == holder) }
    })
    .await;
    let version = admin.set_transport_config(secure_list(&["fabrikam.com"])).await.unwrap().into_inner().config_version;
    mail1.wait_for_version(version).await;
}

/// A TCP proxy to PostgreSQL that a test can cut (every connection dropped, new ones
/// refused) and restore: a database outage without stopping the shared server.
struct DatabaseProxy {
    address: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl DatabaseProxy {
    /// While down the port is closed (connections refused, as with the server stopped)
    /// and every forwarded connection is cut.
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (up, mut watch) = tokio::sync::watch::channel(true);
        let cuts = up.subscribe();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let Some(open) = listener.as_ref() else {
                    if watch.wait_for(|up| *up).await.is_err() {
                        return;
                    }
                    listener = tokio::net::TcpListener::bind(address).await.ok();
                    continue;
                };
                tokio::select! {
                    accepted = open.accept() => {
                        let Ok((mut client, _)) = accepted else { return };
                        let mut cut = cuts.clone();
                        tokio::spawn(async move {
                            let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = cut.wait_for(|up| !*up) => {}
                            }
                        });
                    }
                    changed = watch.wait_for(|up| !*up) => {
                        if changed.is_err() {
                            return;
                        }
                        drop(changed);
                        listener = None;
                    }
                }
            }
        });
        Self { address, up }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_database_outage_is_survived_and_the_missed_version_caught_up(pool: PgPool) {
    use sqlx::postgres::PgPoolOptions;
    // The first replica reaches the database through the proxy; the second directly.
    let options = pool.connect_options();
    let upstream: std::net::SocketAddr = format!("127.0.0.1:{}", options.get_port()).parse().unwrap();
    let proxy = DatabaseProxy::start(upstream).await;
    let proxied = PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(controller::db::ACQUIRE_TIMEOUT)
        .connect_with((*options).clone().host("127.0.0.1").port(proxy.address.port()))
        .await
        .unwrap();
    let first = TestController::start(proxied).await;
    let second = first.replica_on(pool.clone()).await;
    let mut mail1 = TestEdge::subscribe(&first, "mail1").await;
    let mut through_first = first.org_admin().await;
    let before = current_version(&mut through_first).await;
    mail1.wait_for_version(before).await;

    // The outage: the first replica cannot reach the directory.
    proxy.set(false);
    let refused = through_first.set_transport_config(secure_list(&["contoso-partner.example"])).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().starts_with("directory unreachable"), "{refused:?}");
    // Meanwhile a change through the other replica: the first misses its notification.
    let mut through_second = second.org_admin().await;
    let missed = through_second
        .set_transport_config(secure_list(&["woodgrovebank.com"]))
        .await
        .unwrap()
        .into_inner()
        .config_version;
    assert!(missed > before);
    // The edge keeps serving its last good configuration.
    assert_eq!(mail1.version(), before);

    // The database is back: the first replica re-listens, re-checks the version and
    // pushes what it missed; the refused change was never written.
    proxy.set(true);
    let config = tokio::time::timeout(std::time::Duration::from_secs(10), mail1.wait_for_version(missed))
        .await
        .expect("the edge in sync within 10 s of the database's return");
    assert_eq!(config.transport.tls_send_domain_secure_list[0].to_string(), "woodgrovebank.com");
    let now = through_second.get_transport_config(pb::GetTransportConfigRequest {}).await.unwrap().into_inner();
    assert!(!now.tls_send_domain_secure_list.iter().any(|d| d == "contoso-partner.example"), "no partial write");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn an_edge_recorded_by_a_replica_whose_lease_ran_out_is_not_connected(pool: PgPool) {
    use controller::db::{replicas, sync_state};
    let controller = TestController::start(pool.clone()).await;
    let mut admin = controller.org_admin().await;
    admin.create_edge(pb::CreateEdgeRequest { name: "mail9".into(), fqdn: "mail9.contoso.com".into() }).await.unwrap();
    let edge_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM edges WHERE name = 'mail9'").fetch_one(&pool).await.unwrap();
    // What a replica killed with SIGKILL leaves behind: the edge recorded as connected to it.
    let now = chrono::Utc::now();
    let state = sync_state::SyncState {
        edge_id,
        connected: true,
        connected_since: Some(now),
        controller: Some("replica-9".into()),
        last_seen_at: Some(now),
        stream_generation: Some(1),
        ..Default::default()
    };
    sync_state::store_all(&pool, &[state]).await.unwrap();
    replicas::renew(&pool, "replica-9", "127.0.0.1:9", now, std::time::Duration::from_secs(3600), 1).await.unwrap();
    let row = fleet_row(&mut admin, "mail9").await.unwrap();
    assert!(row.connected, "held by a replica with a live lease: {row:?}");

    // Its lease runs out (it was never renewed): the row no longer counts as connected,
    // long before the 120 s staleness rule would say so.
    sqlx::query("UPDATE controller_replicas SET live_until = now() - interval '1 second' WHERE id = 'replica-9'")
        .execute(&pool)
        .await
        .unwrap();
    let row = fleet_row(&mut admin, "mail9").await.unwrap();
    assert!(!row.connected, "{row:?}");
    // The live replica's own lease is on record and live.
    let leases = replicas::list(&pool).await.unwrap();
    let own = format!("test@{}", controller.edge_address);
    assert!(leases.iter().any(|r| r.id == own && r.live), "{leases:?}");
    assert!(leases.iter().any(|r| r.id == "replica-9" && !r.live), "{leases:?}");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_late_write_from_an_older_stream_does_not_overwrite_the_newer_streams_state(pool: PgPool) {
    use controller::db::sync_state;
    let controller = TestController::start(pool.clone()).await;
    let mut admin = controller.org_admin().await;
    admin.create_edge(pb::CreateEdgeRequest { name: "mail9".into(), fqdn: "mail9.contoso.com".into() }).await.unwrap();
    let edge_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM edges WHERE name = 'mail9'").fetch_one(&pool).await.unwrap();
    let now = chrono::Utc::now();
    let stream = |generation: i64, controller: &str, connected: bool| sync_state::SyncState {
        edge_id,
        connected,
        connected_since: Some(now),
        controller: Some(controller.into()),
        last_seen_at: Some(now),
        stream_generation: Some(generation),
        ..Default::default()
    };
    // The edge left replica-1 (stream 1) for replica-2 (stream 2); replica-1 notices late
    // and writes its stream's end after replica-2 wrote the new one.
    sync_state::store_all(&pool, &[stream(1, "replica-1", true)]).await.unwrap();
    sync_state::store_all(&pool, &[stream(2, "replica-2", true)]).await.unwrap();
    sync_state::store_all(&pool, &[stream(1, "replica-1", false)]).await.unwrap();
    let stored = sync_state::load(&pool, edge_id).await.unwrap();
    assert_eq!((stored.connected, stored.controller.as_deref()), (true, Some("replica-2")), "{stored:?}");
    // The newer stream's own end is written.
    sync_state::store_all(&pool, &[stream(2, "replica-2", false)]).await.unwrap();
    assert!(!sync_state::load(&pool, edge_id).await.unwrap().connected);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_directory_rolled_back_to_an_older_version_does_not_roll_the_edges_back(pool: PgPool) {
    let controller = TestController::start(pool.clone()).await;
    let mut admin = controller.org_admin().await;
    let mut mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let runs = admin.set_transport_config(secure_list(&["fabrikam.com"])).await.unwrap().into_inner().config_version;
    mail1.wait_for_version(runs).await;
    eventually("the ACK recorded", || {
        let mut admin = admin.clone();
        async move { fleet_row(&mut admin, "mail1").await.filter(|r| r.version_acked == runs) }
    })
    .await;
    // A restore from an older backup: the directory's version goes back, and an
    // operator forces a sync. The controller does not push the older version.
    sqlx::query("UPDATE organization SET config_version = config_version - 1").execute(&pool).await.unwrap();
    let controller = controller.restart().await;
    let mut admin = controller.org_admin().await;
    eventually("mail1 back on the restarted controller", || {
        let mut admin = admin.clone();
        async move { fleet_row(&mut admin, "mail1").await.filter(|r| r.connected) }
    })
    .await;
    let response = admin
        .sync_edges(pb::SyncEdgesRequest { names: vec!["mail1".into()], all: false, timeout_seconds: 2 })
        .await
        .unwrap()
        .into_inner();
    // Not pushed, so not answered (an edge sent the older version would NACK it).
    assert_eq!(response.results[0].outcome, "timeout", "{response:?}");
    assert_eq!(mail1.version(), runs, "the edge still runs version {runs}");
    let config = mail1.config.borrow().clone().unwrap();
    assert_eq!(config.transport.tls_send_domain_secure_list[0].to_string(), "fabrikam.com");
}
