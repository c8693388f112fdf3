//! Only credentials the organization issued and recorded reach the API.

use controller::{pki::OrgCa, testing::TestController};
use domainsec_model::Role;
use proto::admin as pb;
use sqlx::PgPool;
use tonic::{
    Code,
    transport::{Certificate, ClientTlsConfig, Identity},
};

use crate::support::assert_status;

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_client_without_a_certificate_is_refused(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let bundle = controller::testing::read_bundle(&controller.org_admin_credentials());
    let mut client = controller
        .client_with(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&bundle.ca_certificate))
                .domain_name(&bundle.server_name),
        )
        .await;
    let error = client.get_transport_config(pb::GetTransportConfigRequest {}).await.unwrap_err();
    assert_ne!(error.code(), Code::Ok);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_certificate_from_another_ca_is_refused(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let bundle = controller::testing::read_bundle(&controller.org_admin_credentials());
    let (foreign_ca, _) = OrgCa::generate("Mallory").unwrap();
    let foreign = foreign_ca.issue_admin("Contoso", "admin", Role::OrgAdmin, 1).unwrap();
    let mut client = controller
        .client_with(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&bundle.ca_certificate))
                .identity(Identity::from_pem(&foreign.certificate_pem, &foreign.key_pem))
                .domain_name(&bundle.server_name),
        )
        .await;
    let error = client.get_transport_config(pb::GetTransportConfigRequest {}).await.unwrap_err();
    assert_ne!(error.code(), Code::Ok);
    assert_eq!(controller.audit_rows().await, 1, "only init is in the audit log");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_revoked_credential_is_refused(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let credentials = controller.issue(Role::OrgAdmin, "leaver", &[]).await;
    let mut client = controller.client(&credentials).await;
    client.who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    sqlx::query("UPDATE admin_credentials SET revoked_at = now() WHERE name = 'leaver'")
        .execute(&controller.pool)
        .await
        .unwrap();
    assert_status(
        client.who_am_i(pb::WhoAmIRequest {}).await,
        Code::Unauthenticated,
        "this credential has been revoked",
    );
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_ca_signed_certificate_missing_from_the_directory_is_refused(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let state = controller.dir.path().join("state");
    let ca = OrgCa::load(
        &std::fs::read_to_string(state.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(state.join("ca.key")).unwrap(),
    )
    .unwrap();
    // Signed by the right CA, but never recorded: e.g. made with a stolen CA key copy.
    let unrecorded = ca.issue_admin("Contoso", "ghost", Role::OrgAdmin, 1).unwrap();
    let bundle = controller::testing::read_bundle(&controller.org_admin_credentials());
    let mut client = controller
        .client_with(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&bundle.ca_certificate))
                .identity(Identity::from_pem(&unrecorded.certificate_pem, &unrecorded.key_pem))
                .domain_name(&bundle.server_name),
        )
        .await;
    assert_status(
        client.who_am_i(pb::WhoAmIRequest {}).await,
        Code::Unauthenticated,
        "this credential is not in the organization's directory",
    );
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn the_health_service_reports_the_admin_api_serving(pool: PgPool) {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let controller = TestController::start(pool).await;
    let bundle = controller::testing::read_bundle(&controller.org_admin_credentials());
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", controller.address))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&bundle.ca_certificate))
                .identity(Identity::from_pem(&bundle.certificate, &bundle.private_key))
                .domain_name(&bundle.server_name),
        )
        .unwrap()
        .connect_lazy();
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: "domainsec.admin.v1.Admin".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.status(), ServingStatus::Serving);
}

/// A health client on the plain listener: no TLS, no client certificate.
async fn plain_health(
    controller: &TestController,
) -> tonic_health::pb::health_client::HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", controller.health_address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic_health::pb::health_client::HealthClient::new(channel)
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn grpc_health_answers_without_a_client_certificate_and_goes_not_serving_first_on_stop(pool: PgPool) {
    use tokio_stream::StreamExt as _;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let mut controller = TestController::start(pool).await;
    let mut health = plain_health(&controller).await;
    let request = |service: &str| HealthCheckRequest { service: service.into() };
    // The first database check flips it to SERVING; watch until then (deadline, no sleep).
    let mut watch = health.watch(request("")).await.unwrap().into_inner();
    let serving = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(update) = watch.next().await {
            if update.unwrap().status() == ServingStatus::Serving {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(serving, "the overall status reaches SERVING while the database answers");
    let admin = health.check(request(controller::health::ADMIN_SERVICE)).await.unwrap().into_inner();
    assert_eq!(admin.status(), ServingStatus::Serving);
    let unknown = health.check(request("no.such.Service")).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // A stop: the watcher sees NOT_SERVING before the listener goes away.
    let stopping = tokio::spawn(async move { controller.stop().await });
    let next = tokio::time::timeout(std::time::Duration::from_secs(20), watch.next()).await.unwrap();
    assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
    stopping.await.unwrap();
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn grpc_health_is_not_serving_when_the_database_is_gone(pool: PgPool) {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    // A pool that can no longer reach the database: every check fails as it would with the
    // server down.
    let gone = pool.clone();
    gone.close().await;
    let health = controller::health::Health::start(gone, tokio_util::sync::CancellationToken::new()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stopped = tokio_util::sync::CancellationToken::new();
    tokio::spawn(health.serve_plain(listener, stopped.clone()));
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap();
    let response =
        HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(response.status(), ServingStatus::NotServing);
    stopped.cancel();
}
