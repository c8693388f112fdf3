//! Set-TransportConfig semantics: replace, add/remove, versions and audit.

use controller::testing::TestController;
use proto::admin as pb;
use sqlx::PgPool;
use tonic::Code;

use crate::support::{assert_status, list, strings};

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_given_list_replaces_the_whole_value(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    let first = client
        .set_transport_config(pb::SetTransportConfigRequest {
            tls_send_domain_secure_list: list(&["woodgrovebank.com", "fabrikam.com"]),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.tls_send_domain_secure_list, strings(&["woodgrovebank.com", "fabrikam.com"]));
    // The paper's note: the new value replaces the old one, it does not add to it.
    let second = client
        .set_transport_config(pb::SetTransportConfigRequest {
            tls_send_domain_secure_list: list(&["Tailspintoys.com"]),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.tls_send_domain_secure_list, strings(&["tailspintoys.com"]));
    assert_eq!(second.config_version, first.config_version + 1);
    let read = client.get_transport_config(pb::GetTransportConfigRequest {}).await.unwrap().into_inner();
    assert_eq!(read, second);
    assert!(read.tls_receive_domain_secure_list.is_empty(), "the other list is untouched");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn add_and_remove_change_single_entries(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    client
        .set_transport_config(pb::SetTransportConfigRequest {
            tls_receive_domain_secure_list: list(&["woodgrovebank.com"]),
            ..Default::default()
        })
        .await
        .unwrap();
    let config = client
        .set_transport_config(pb::SetTransportConfigRequest {
            add_tls_receive_domain_secure: strings(&["fabrikam.com"]),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config.tls_receive_domain_secure_list, strings(&["woodgrovebank.com", "fabrikam.com"]));
    let config = client
        .set_transport_config(pb::SetTransportConfigRequest {
            remove_tls_receive_domain_secure: strings(&["woodgrovebank.com"]),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config.tls_receive_domain_secure_list, strings(&["fabrikam.com"]));
    let version = controller.config_version().await;
    assert_status(
        client
            .set_transport_config(pb::SetTransportConfigRequest {
                remove_tls_receive_domain_secure: strings(&["woodgrovebank.com"]),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "remove_tls_receive_domain_secure[0] \"woodgrovebank.com\": not in tls_receive_domain_secure_list",
    );
    assert_eq!(controller.config_version().await, version, "a refused edit changes nothing");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn an_empty_list_clears_and_wildcards_cover_subdomains(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    let config = client
        .set_transport_config(pb::SetTransportConfigRequest {
            tls_send_domain_secure_list: list(&["*.woodgrovebank.com"]),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config.tls_send_domain_secure_list, strings(&["*.woodgrovebank.com"]));
    let config = client
        .set_transport_config(pb::SetTransportConfigRequest {
            tls_send_domain_secure_list: list(&[]),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(config.tls_send_domain_secure_list.is_empty());
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn every_change_bumps_the_version_and_writes_an_audit_row(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    let version = controller.config_version().await;
    let rows = controller.audit_rows().await;
    client
        .set_transport_config(pb::SetTransportConfigRequest {
            tls_send_domain_secure_list: list(&["woodgrovebank.com"]),
            ..Default::default()
        })
        .await
        .unwrap();
    client.add_accepted_domain(pb::AddAcceptedDomainRequest { domain: "contoso.com".to_owned() }).await.unwrap();
    assert_eq!(controller.config_version().await, version + 2);
    assert_eq!(controller.audit_rows().await, rows + 2);
    let entries =
        client.list_audit_entries(pb::ListAuditEntriesRequest { limit: 2 }).await.unwrap().into_inner().entries;
    assert_eq!(entries.len(), 2);
    let (newest, older) = (&entries[0], &entries[1]);
    assert_eq!(newest.action, "accepted-domain.add");
    assert_eq!(newest.target, "contoso.com");
    assert_eq!(newest.before_json, "null");
    assert_eq!(older.action, "transport-config.set");
    assert_eq!(older.actor, "admin");
    assert_eq!(older.actor_role, "org-admin");
    assert_eq!(older.config_version as i64, version + 1);
    let before: serde_json::Value = serde_json::from_str(&older.before_json).unwrap();
    let after: serde_json::Value = serde_json::from_str(&older.after_json).unwrap();
    assert_eq!(before["tls_send_domain_secure_list"], serde_json::json!([]));
    assert_eq!(after["tls_send_domain_secure_list"], serde_json::json!(["woodgrovebank.com"]));
}
