//! Every admin call is authorised by the role in the caller's credential.

use controller::testing::TestController;
use domainsec_model::Role;
use proto::admin as pb;
use sqlx::PgPool;
use tonic::Code;

use crate::support::{add_edges, assert_refused, assert_status, inet_connector, internet_connector, list, strings};

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn view_only_can_read_but_change_nothing(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    add_edges(&mut admin, &["mail1"]).await;
    admin.create_send_connector(internet_connector(&["mail1"])).await.unwrap();
    admin.create_receive_connector(inet_connector("mail1")).await.unwrap();
    admin.add_accepted_domain(pb::AddAcceptedDomainRequest { domain: "contoso.com".into() }).await.unwrap();
    let credentials = controller.issue(Role::ViewOnly, "auditor", &[]).await;
    let mut viewer = controller.client(&credentials).await;
    let version = controller.config_version().await;
    let rows = controller.audit_rows().await;

    viewer.get_transport_config(pb::GetTransportConfigRequest {}).await.unwrap();
    viewer.list_send_connectors(pb::ListSendConnectorsRequest {}).await.unwrap();
    viewer.list_receive_connectors(pb::ListReceiveConnectorsRequest::default()).await.unwrap();
    viewer.list_accepted_domains(pb::ListAcceptedDomainsRequest {}).await.unwrap();
    viewer.list_edges(pb::ListEdgesRequest {}).await.unwrap();
    viewer.list_audit_entries(pb::ListAuditEntriesRequest { limit: 5 }).await.unwrap();

    assert_status(
        viewer
            .set_transport_config(pb::SetTransportConfigRequest {
                tls_send_domain_secure_list: list(&["woodgrovebank.com"]),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        "set transport config requires role org-admin; \"auditor\" has role view-only",
    );
    let denied = Code::PermissionDenied;
    assert_refused(
        viewer.add_accepted_domain(pb::AddAcceptedDomainRequest { domain: "fabrikam.com".into() }).await,
        denied,
        "requires role org-admin",
    );
    assert_refused(
        viewer.remove_accepted_domain(pb::RemoveAcceptedDomainRequest { domain: "contoso.com".into() }).await,
        denied,
        "requires role org-admin",
    );
    let mut spec = internet_connector(&["mail1"]);
    spec.name = "Other".into();
    assert_refused(viewer.create_send_connector(spec).await, denied, "requires role org-admin");
    assert_refused(
        viewer
            .update_send_connector(pb::UpdateSendConnectorRequest {
                name: "Internet".into(),
                domain_secure_enabled: Some(false),
                ..Default::default()
            })
            .await,
        denied,
        "requires role org-admin",
    );
    assert_refused(
        viewer.remove_send_connector(pb::RemoveSendConnectorRequest { name: "Internet".into() }).await,
        denied,
        "requires role org-admin",
    );
    let mut spec = inet_connector("mail1");
    spec.name = "Other".into();
    assert_refused(viewer.create_receive_connector(spec).await, denied, "requires role org-admin");
    assert_refused(
        viewer
            .update_receive_connector(pb::UpdateReceiveConnectorRequest {
                edge: "mail1".into(),
                name: "Inet".into(),
                domain_secure_enabled: Some(false),
                ..Default::default()
            })
            .await,
        denied,
        "requires role org-admin",
    );
    assert_refused(
        viewer
            .remove_receive_connector(pb::RemoveReceiveConnectorRequest { edge: "mail1".into(), name: "Inet".into() })
            .await,
        denied,
        "requires role org-admin",
    );
    assert_refused(
        viewer.create_edge(pb::CreateEdgeRequest { name: "mail9".into(), fqdn: "mail9.contoso.com".into() }).await,
        denied,
        "requires role org-admin",
    );
    assert_refused(viewer.remove_edge(pb::RemoveEdgeRequest { name: "mail1".into() }).await, denied, "org-admin");

    assert_eq!(controller.config_version().await, version, "nothing changed");
    assert_eq!(controller.audit_rows().await, rows, "nothing audited");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn server_admin_manages_only_the_connectors_of_its_edges(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut admin = controller.org_admin().await;
    add_edges(&mut admin, &["mail1", "mail2"]).await;
    let credentials = controller.issue(Role::ServerAdmin, "edge-ops", &["mail1"]).await;
    let mut ops = controller.client(&credentials).await;

    ops.create_receive_connector(inet_connector("mail1")).await.unwrap();
    assert_status(
        ops.create_receive_connector(inet_connector("mail2")).await,
        Code::PermissionDenied,
        "create receive connector mail2/Inet requires role org-admin, or server-admin for edge(s) mail2; \
         \"edge-ops\" has role server-admin for edge(s) mail1",
    );
    ops.create_send_connector(internet_connector(&["mail1"])).await.unwrap();
    // Widening a connector to an edge outside the scope is refused.
    assert_refused(
        ops.update_send_connector(pb::UpdateSendConnectorRequest {
            name: "Internet".into(),
            source_edges: list(&["mail1", "mail2"]),
            ..Default::default()
        })
        .await,
        Code::PermissionDenied,
        "server-admin for edge(s) mail1,mail2",
    );
    assert_refused(
        ops.set_transport_config(pb::SetTransportConfigRequest {
            add_tls_send_domain_secure: strings(&["woodgrovebank.com"]),
            ..Default::default()
        })
        .await,
        Code::PermissionDenied,
        "requires role org-admin",
    );
    assert_refused(
        ops.add_accepted_domain(pb::AddAcceptedDomainRequest { domain: "contoso.com".into() }).await,
        Code::PermissionDenied,
        "requires role org-admin",
    );
    let who = ops.who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(who.role, pb::Role::ServerAdmin as i32);
    assert_eq!(who.edges, strings(&["mail1"]));
    assert_eq!(who.organization, "Contoso");
}
