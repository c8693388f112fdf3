//! Send and receive connectors: the paper's settings round-trip; names are unique.

use controller::testing::TestController;
use proto::admin as pb;
use sqlx::PgPool;
use tonic::Code;

use crate::support::{add_edges, assert_refused, assert_status, inet_connector, internet_connector, list, strings};

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn the_papers_send_connector_round_trips(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    add_edges(&mut client, &["mail1", "mail2"]).await;
    let mut spec = internet_connector(&["mail1"]);
    spec.domain_secure_enabled = false;
    spec.fqdn = "Mail.Contoso.com".into();
    client.create_send_connector(spec).await.unwrap();
    // Set-SendConnector Internet -DomainSecureEnabled:$True, plus a second source edge.
    let updated = client
        .update_send_connector(pb::UpdateSendConnectorRequest {
            name: "Internet".into(),
            domain_secure_enabled: Some(true),
            source_edges: list(&["mail1", "mail2"]),
            max_message_size: Some(20 * 1024 * 1024),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let read =
        client.get_send_connector(pb::GetSendConnectorRequest { name: "Internet".into() }).await.unwrap().into_inner();
    assert_eq!(read, updated);
    let spec = read.spec.unwrap();
    assert!(spec.domain_secure_enabled);
    assert_eq!(spec.fqdn, "mail.contoso.com", "left as it was, normalised");
    assert_eq!(spec.source_edges, strings(&["mail1", "mail2"]));
    assert_eq!(spec.max_message_size, 20 * 1024 * 1024);
    assert_eq!(spec.address_spaces, strings(&["*"]));
    assert!(spec.smart_hosts.is_empty(), "DNS routing");

    // Switching to smart hosts while Domain Security is on is refused; with it off, accepted.
    assert_refused(
        client
            .update_send_connector(pb::UpdateSendConnectorRequest {
                name: "Internet".into(),
                smart_hosts: list(&["relay.contoso.com"]),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "Domain Security requires DNS routing",
    );
    let spec = client
        .update_send_connector(pb::UpdateSendConnectorRequest {
            name: "Internet".into(),
            smart_hosts: list(&["relay.contoso.com", "192.0.2.10:2525"]),
            domain_secure_enabled: Some(false),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .spec
        .unwrap();
    assert_eq!(spec.smart_hosts, strings(&["relay.contoso.com:25", "192.0.2.10:2525"]));
    let listed =
        client.list_send_connectors(pb::ListSendConnectorsRequest {}).await.unwrap().into_inner().send_connectors;
    assert_eq!(listed.len(), 1);
    client.remove_send_connector(pb::RemoveSendConnectorRequest { name: "Internet".into() }).await.unwrap();
    assert_status(
        client.get_send_connector(pb::GetSendConnectorRequest { name: "Internet".into() }).await,
        Code::NotFound,
        "send connector \"Internet\" not found",
    );
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn duplicate_names_are_refused(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    add_edges(&mut client, &["mail1", "mail2"]).await;
    client.create_send_connector(internet_connector(&["mail1"])).await.unwrap();
    assert_status(
        client.create_send_connector(internet_connector(&["mail2"])).await,
        Code::AlreadyExists,
        "send connector \"Internet\" already exists",
    );
    client.create_receive_connector(inet_connector("mail1")).await.unwrap();
    assert_status(
        client.create_receive_connector(inet_connector("mail1")).await,
        Code::AlreadyExists,
        "receive connector \"mail1/Inet\" already exists",
    );
    // The same name on another edge is a different connector.
    client.create_receive_connector(inet_connector("mail2")).await.unwrap();
    assert_status(
        client
            .add_accepted_domain(pb::AddAcceptedDomainRequest { domain: "contoso.com".into() })
            .await
            .and(client.add_accepted_domain(pb::AddAcceptedDomainRequest { domain: "Contoso.COM".into() }).await),
        Code::AlreadyExists,
        "accepted domain \"contoso.com\" already exists",
    );
    assert_status(
        client.create_edge(pb::CreateEdgeRequest { name: "mail1".into(), fqdn: "mail1.contoso.com".into() }).await,
        Code::AlreadyExists,
        "edge \"mail1\" already exists",
    );
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn the_papers_receive_connector_round_trips(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    add_edges(&mut client, &["mail1"]).await;
    let mut spec = inet_connector("mail1");
    spec.domain_secure_enabled = false;
    spec.auth_mechanisms = vec![];
    spec.permission_groups = vec![];
    let created = client.create_receive_connector(spec).await.unwrap().into_inner().spec.unwrap();
    assert_eq!(created.auth_mechanisms, vec![pb::AuthMechanism::Tls as i32], "default: tls");
    assert_eq!(
        created.permission_groups,
        vec![pb::PermissionGroup::AnonymousUsers as i32, pb::PermissionGroup::Partners as i32],
        "default: an internet connector"
    );
    // Set-ReceiveConnector Inet -DomainSecureEnabled:$True -AuthMechanism TLS -ProtocolLoggingLevel Verbose
    let updated = client
        .update_receive_connector(pb::UpdateReceiveConnectorRequest {
            edge: "mail1".into(),
            name: "Inet".into(),
            domain_secure_enabled: Some(true),
            protocol_logging_level: Some(pb::ProtocolLoggingLevel::Verbose as i32),
            bindings: list(&["0.0.0.0:25", "[::]:25"]),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let read = client
        .get_receive_connector(pb::GetReceiveConnectorRequest { edge: "mail1".into(), name: "Inet".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, updated);
    let spec = read.spec.unwrap();
    assert!(spec.domain_secure_enabled);
    assert_eq!(spec.protocol_logging_level, pb::ProtocolLoggingLevel::Verbose as i32);
    assert_eq!(spec.bindings, strings(&["0.0.0.0:25", "[::]:25"]));
    let listed = client
        .list_receive_connectors(pb::ListReceiveConnectorsRequest { edge: "mail1".into() })
        .await
        .unwrap()
        .into_inner()
        .receive_connectors;
    assert_eq!(listed.len(), 1);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn one_binding_serves_two_connectors_only_with_different_remote_ranges(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    add_edges(&mut client, &["mail1"]).await;
    client.create_receive_connector(inet_connector("mail1")).await.unwrap();
    let mut internal = inet_connector("mail1");
    internal.name = "FromHub".into();
    internal.domain_secure_enabled = false;
    assert_status(
        client.create_receive_connector(internal.clone()).await,
        Code::InvalidArgument,
        "bindings[0] \"0.0.0.0:25\": receive connector \"Inet\" on this edge already listens there for the same \
         remote IP ranges; give one of them other remote_ip_ranges or another binding",
    );
    internal.permission_groups = vec![pb::PermissionGroup::ExchangeServers as i32];
    let refused = client.create_receive_connector(internal.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("remote_ip_ranges: a connector with the exchange-servers"), "{refused:?}");
    internal.remote_ip_ranges = strings(&["10.0.0.0/8"]);
    client.create_receive_connector(internal).await.unwrap();
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn removing_an_edge_removes_its_receive_connectors(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    add_edges(&mut client, &["mail1", "mail2"]).await;
    client.create_receive_connector(inet_connector("mail2")).await.unwrap();
    client.create_send_connector(internet_connector(&["mail1"])).await.unwrap();
    assert_refused(
        client.remove_edge(pb::RemoveEdgeRequest { name: "mail1".into() }).await,
        Code::InvalidArgument,
        "edge is the only source of send connector \"Internet\"",
    );
    client
        .update_send_connector(pb::UpdateSendConnectorRequest {
            name: "Internet".into(),
            source_edges: list(&["mail1", "mail2"]),
            ..Default::default()
        })
        .await
        .unwrap();
    client.remove_edge(pb::RemoveEdgeRequest { name: "mail2".into() }).await.unwrap();
    let connectors = client
        .list_receive_connectors(pb::ListReceiveConnectorsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .receive_connectors;
    assert!(connectors.is_empty());
    let spec = client
        .get_send_connector(pb::GetSendConnectorRequest { name: "Internet".into() })
        .await
        .unwrap()
        .into_inner()
        .spec
        .unwrap();
    assert_eq!(spec.source_edges, strings(&["mail1"]));
}
