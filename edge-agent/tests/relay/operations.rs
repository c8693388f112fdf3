//! The queue and the protocol logs through the controller, as `dsctl queue` and
//! `dsctl protocol-log` reach them: a real controller, a real edge with its relay.

use controller::testing::TestController;
use domainsec_model::Role;
use edge::{
    control::sync::{EdgeAgent, SyncSettings},
    relay::Relay,
    store::DataDir,
};
use proto::admin as pb;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::support::*;

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn operators_list_retry_and_remove_queued_mail_and_read_protocol_logs(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    // The edge, with its relay; the next hop for woodgrovebank.com is down.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hub = subscribed_hub_edge(&controller, &data).await;
    let mut settings = test_settings();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    route(&mut settings, "woodgrovebank.com", &[(10, dead)]);
    settings.queue.retry_initial = std::time::Duration::from_secs(60);
    settings.queue.retry_max = std::time::Duration::from_secs(60);
    let shutdown = CancellationToken::new();
    let sync = SyncSettings { heartbeat_interval: std::time::Duration::from_millis(200), ..SyncSettings::default() };
    let mut agent = EdgeAgent::load(DataDir::new(&data), sync).unwrap();
    let relay = Relay::start(&data, &settings, agent.config(), agent.listening(), &shutdown).unwrap();
    agent.attach_relay(relay.clone());
    tokio::spawn(agent.run(shutdown.clone()));
    eventually("the edge to listen", || async move { tokio::net::TcpStream::connect(hub).await.ok().map(|_| ()) })
        .await;

    let mut client = Client::connect(hub).await;
    client.command("EHLO hub.contoso.com", 250).await;
    let reply = client.send_message("ted@contoso.com", &["kim@woodgrovebank.com"], "Subject: waits\r\n\r\nx").await;
    let id = reply.split(['<', '>']).nth(1).unwrap().to_owned();
    client.command("QUIT", 221).await;

    // dsctl queue list: the message, with the reason it waits.
    let listed = eventually("the failed first attempt", || {
        let mut admin = admin.clone();
        async move {
            let messages =
                admin.list_queue(pb::ListQueueRequest { edge: "mail1".into() }).await.unwrap().into_inner().messages;
            messages.into_iter().find(|m| !m.last_error.is_empty())
        }
    })
    .await;
    assert_eq!(listed.id, id);
    assert_eq!(listed.sender, "ted@contoso.com");
    assert_eq!(listed.pending, vec!["kim@woodgrovebank.com".to_owned()]);
    assert!(listed.last_error.contains(&dead.to_string()), "{}", listed.last_error);
    assert!(listed.next_attempt_in_seconds > 0);

    // dsctl protocol-log: the session's lines from the Receive log.
    let lines = admin
        .get_protocol_log(pb::GetProtocolLogRequest {
            edge: "mail1".into(),
            connector: "FromHub".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lines;
    assert!(
        lines.iter().any(|l| l.contains("mail1\\FromHub") && l.contains(",<,MAIL FROM:<ted@contoso.com>,")),
        "{lines:?}"
    );

    // Bad protocol-log queries are refused at the API, naming the field.
    for (request, expected) in [
        (pb::GetProtocolLogRequest { edge: "mail1".into(), log: "smtp".into(), ..Default::default() }, "log \"smtp\""),
        (pb::GetProtocolLogRequest { edge: "mail1".into(), limit: 5001, ..Default::default() }, "limit 5001"),
        (
            pb::GetProtocolLogRequest { edge: "mail1".into(), since_unix_seconds: -1, ..Default::default() },
            "since_unix_seconds",
        ),
    ] {
        let refused = admin.get_protocol_log(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(refused.message().starts_with(expected), "{}", refused.message());
    }

    // Queues and logs name people: a view-only admin sees neither; a server-admin of the edge does.
    let mut viewer = controller.client(&controller.issue(Role::ViewOnly, "viewer", &[]).await).await;
    let denied = viewer.list_queue(pb::ListQueueRequest { edge: "mail1".into() }).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut operator = controller.client(&controller.issue(Role::ServerAdmin, "ops", &["mail1"]).await).await;
    let listed = operator.list_queue(pb::ListQueueRequest { edge: "mail1".into() }).await.unwrap().into_inner();
    assert_eq!(listed.messages.len(), 1);
    let request = pb::QueuedMessageRequest { edge: "mail1".into(), message_id: id.clone() };
    assert_eq!(viewer.remove_queued_message(request.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    let denied =
        viewer.get_protocol_log(pb::GetProtocolLogRequest { edge: "mail1".into(), ..Default::default() }).await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);

    // Retry, then remove; a second remove names the problem.
    admin.retry_queued_message(request.clone()).await.unwrap();
    eventually("the retry to finish", || {
        let relay = relay.clone();
        async move { relay.queue.list().first().is_some_and(|m| m.attempts >= 2).then_some(()) }
    })
    .await;
    admin.remove_queued_message(request.clone()).await.unwrap();
    assert!(relay.queue.is_empty());
    let again = admin.remove_queued_message(request).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains(&format!("no queued message {id}")), "{}", again.message());
    let bad = admin
        .retry_queued_message(pb::QueuedMessageRequest { edge: "mail1".into(), message_id: "../x".into() })
        .await
        .unwrap_err();
    assert!(bad.message().starts_with("message_id \"../x\": queue ids are hexadecimal"), "{}", bad.message());

    // dsctl cert verify on an edge whose relay runs: the revocation step comes from the CRL cache.
    let made = admin
        .new_certificate(pb::NewCertificateRequest {
            edge: "mail1".into(),
            subject_name: "CN=mail1.contoso.com".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let made = wait_task(&mut admin, &made.tasks[0].id).await;
    let queued = admin
        .verify_certificate(pb::VerifyCertificateRequest { edge: "mail1".into(), thumbprint: made.thumbprint })
        .await
        .unwrap()
        .into_inner();
    let report = wait_task(&mut admin, &queued.tasks[0].id).await;
    assert!(!report.steps.iter().any(|s| s.starts_with("revocation: not checked")), "{:?}", report.steps);
    assert!(report.steps.iter().any(|s| s.contains("self-signed root, no CRL to check")), "{:?}", report.steps);
    shutdown.cancel();
}

async fn wait_task(
    admin: &mut proto::admin::admin_client::AdminClient<tonic::transport::Channel>,
    id: &str,
) -> pb::CertificateTask {
    eventually("the certificate task", || {
        let mut admin = admin.clone();
        let id = id.to_owned();
        async move {
            let task = admin.get_certificate_task(pb::GetCertificateTaskRequest { id }).await.unwrap().into_inner();
            (task.state != "queued").then_some(task)
        }
    })
    .await
}
