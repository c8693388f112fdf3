//! Direct trust refuses what the directory does not hold.

use std::sync::Arc;

use controller::{pki::OrgCa, testing::TestController};
use domainsec_model::Role;
use edge::{
    control::{
        subscribe::subscribe,
        tls::{self, PinnedControllers},
    },
    identity::EdgeIdentity,
    store::DataDir,
};
use proto::{admin as pb, edge::edge_sync_client::EdgeSyncClient};
use sqlx::PgPool;

use crate::support::{TestEdge, subscription_file};

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_subscription_file_works_once(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let file = subscription_file(&mut admin, controller.dir.path(), "mail1").await;
    let first = tempfile::tempdir().unwrap();
    subscribe(&file, &DataDir::new(first.path().join("data"))).await.unwrap();
    let second = tempfile::tempdir().unwrap();
    let error = subscribe(&file, &DataDir::new(second.path().join("data"))).await.unwrap_err().to_string();
    assert!(error.contains("this subscription was already used at"), "{error}");
    assert!(!second.path().join("data").exists(), "nothing half-registered on the edge");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn expired_and_forged_secrets_are_refused_and_change_nothing(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let file = subscription_file(&mut admin, controller.dir.path(), "mail1").await;
    let text = std::fs::read_to_string(&file).unwrap();
    let forged = controller.dir.path().join("forged.subscription");
    let secret_line = text.lines().find(|l| l.starts_with("secret")).unwrap();
    std::fs::write(&forged, text.replace(secret_line, "secret = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\""))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = subscribe(&forged, &DataDir::new(dir.path().join("data"))).await.unwrap_err().to_string();
    assert!(error.contains("the subscription secret does not match"), "{error}");

    sqlx::query("UPDATE edge_subscriptions SET expires_at = now() - interval '1 minute'")
        .execute(&controller.pool)
        .await
        .unwrap();
    let error = subscribe(&file, &DataDir::new(dir.path().join("data"))).await.unwrap_err().to_string();
    assert!(error.contains("this subscription expired at"), "{error}");
    let registered: Option<String> = sqlx::query_scalar("SELECT certificate_sha256 FROM edges WHERE name = 'mail1'")
        .fetch_one(&controller.pool)
        .await
        .unwrap();
    assert_eq!(registered, None, "no certificate registered");
    let edges = admin.list_edges(pb::ListEdgesRequest {}).await.unwrap().into_inner().edges;
    assert_eq!(edges[0].state, "pending");
}

/// Opens a sync stream presenting `identity`; returns the refusal, if any.
async fn sync_with(controller: &TestController, identity: &EdgeIdentity) -> Result<(), String> {
    let fingerprints = controller::edgesync::controller_fingerprints(&controller.pool).await.unwrap();
    let pinned = Arc::new(PinnedControllers::new(fingerprints));
    let channel =
        tls::connect(&controller.edge_address.to_string(), identity, pinned, false).await.map_err(|e| e.to_string())?;
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let _keep = sender;
    let mut stream = EdgeSyncClient::new(channel)
        .sync(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .map_err(|s| s.to_string())?
        .into_inner();
    // A trusted edge gets its snapshot first.
    match stream.message().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("stream closed".into()),
        Err(status) => Err(status.to_string()),
    }
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn unknown_and_ca_signed_but_unlisted_certificates_are_refused(pool: PgPool) {
    let controller = TestController::start(pool).await;
    // A self-signed certificate the directory has never seen.
    let stranger_dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(stranger_dir.path());
    data.create().unwrap();
    let stranger = EdgeIdentity::create(&data, "Mallory", "mail1.contoso.com").unwrap();
    assert!(sync_with(&controller, &stranger).await.is_err(), "unknown certificate refused");

    // A certificate signed by the organization's own CA is still not an edge.
    let state = controller.dir.path().join("state");
    let ca = OrgCa::load(
        &std::fs::read_to_string(state.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(state.join("ca.key")).unwrap(),
    )
    .unwrap();
    let issued = ca.issue_admin("Contoso", "mail1", Role::OrgAdmin, 1).unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_data = DataDir::new(ca_dir.path());
    ca_data.create().unwrap();
    std::fs::write(ca_data.key(), &issued.key_pem).unwrap();
    std::fs::write(ca_data.certificate(), &issued.certificate_pem).unwrap();
    let ca_signed = EdgeIdentity::load(&ca_data).unwrap();
    assert!(sync_with(&controller, &ca_signed).await.is_err(), "CA-signed but not in the directory refused");

    // The subscribed edge itself is accepted (the helper can succeed).
    let mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let dir = mail1.stop().await;
    let identity = EdgeIdentity::load(&DataDir::new(dir.path().join("data"))).unwrap();
    sync_with(&controller, &identity).await.unwrap();
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_removed_edge_is_cut_off_at_once_and_refused_after(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let dir = mail1.stop().await;
    let identity = EdgeIdentity::load(&DataDir::new(dir.path().join("data"))).unwrap();

    // A live stream with the edge's certificate.
    let fingerprints = controller::edgesync::controller_fingerprints(&controller.pool).await.unwrap();
    let channel = tls::connect(
        &controller.edge_address.to_string(),
        &identity,
        Arc::new(PinnedControllers::new(fingerprints)),
        false,
    )
    .await
    .unwrap();
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let mut stream = EdgeSyncClient::new(channel)
        .sync(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some(), "the first snapshot arrives");

    admin.remove_edge(pb::RemoveEdgeRequest { name: "mail1".into() }).await.unwrap();
    let ended =
        tokio::time::timeout(crate::support::DEADLINE, stream.message()).await.expect("the stream is cut at once");
    match ended {
        Err(status) => assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}"),
        Ok(other) => panic!("expected the controller to cut the stream, got {other:?}"),
    }
    drop(sender);
    let refused = sync_with(&controller, &identity).await.unwrap_err();
    assert!(!refused.is_empty(), "every reconnect is refused");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM edges WHERE name = 'mail1'")
        .fetch_one(&controller.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the edge and its certificate are gone from the directory");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn new_subscriptions_are_refused_when_they_cannot_be_right(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    let request = |name: &str, fqdn: &str, expires: u64| pb::NewSubscriptionRequest {
        name: name.into(),
        fqdn: fqdn.into(),
        expires_in_seconds: expires,
    };
    let status = admin.new_subscription(request("mail1", "", 0)).await.unwrap_err();
    assert_eq!(status.message(), "fqdn: a new edge needs its internet FQDN, e.g. mail1.contoso.com");
    let status = admin.new_subscription(request("mail1", "mail1.contoso.com", 10)).await.unwrap_err();
    assert!(status.message().starts_with("expires \"10s\": must be from 1 minute to 30 days"), "{}", status.message());
    let status = admin.new_subscription(request("mail1", "mail1.contoso.com", 31 * 24 * 3600)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(admin.list_edges(pb::ListEdgesRequest {}).await.unwrap().into_inner().edges.is_empty(), "nothing recorded");

    admin.create_edge(pb::CreateEdgeRequest { name: "mail2".into(), fqdn: "mail2.contoso.com".into() }).await.unwrap();
    let status = admin.new_subscription(request("mail2", "other.contoso.com", 0)).await.unwrap_err();
    assert!(status.message().contains("is recorded with FQDN mail2.contoso.com"), "{}", status.message());

    let _mail3 = TestEdge::subscribe(&controller, "mail3").await;
    let status = admin.new_subscription(request("mail3", "", 0)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("is already subscribed; remove it"), "{}", status.message());
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_sync_stream_on_the_enrollment_name_is_refused(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mail1 = TestEdge::subscribe(&controller, "mail1").await;
    let dir = mail1.stop().await;
    let identity = EdgeIdentity::load(&DataDir::new(dir.path().join("data"))).unwrap();
    let fingerprints = controller::edgesync::controller_fingerprints(&controller.pool).await.unwrap();
    let channel = tls::connect(
        &controller.edge_address.to_string(),
        &identity,
        Arc::new(PinnedControllers::new(fingerprints)),
        true,
    )
    .await
    .unwrap();
    let (_sender, receiver) = tokio::sync::mpsc::channel(1);
    let status =
        EdgeSyncClient::new(channel).sync(tokio_stream::wrappers::ReceiverStream::new(receiver)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
}
