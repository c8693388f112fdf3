//! Configuration history at the API: every version's document is kept (from the
//! first, and from the upgrade for an older directory); apply adds and removes
//! edges that are not live.

use controller::testing::TestController;
use proto::admin as pb;
use sqlx::PgPool;
use tonic::Code;

use crate::support::{add_edges, assert_refused, assert_status, internet_connector};

async fn export(
    client: &mut proto::admin::admin_client::AdminClient<tonic::transport::Channel>,
    version: u64,
) -> String {
    client.export_config(pb::ExportConfigRequest { version }).await.unwrap().into_inner().document_yaml
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn every_version_from_the_first_is_kept(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    let first = export(&mut client, 1).await;
    assert!(first.contains("organization: Contoso\n") && first.contains("edges: []\n"), "{first}");
    add_edges(&mut client, &["mail1"]).await;
    let second = export(&mut client, 2).await;
    assert!(second.contains("- name: mail1\n  fqdn: mail1.contoso.com\n"), "{second}");
    assert_eq!(
        export(&mut client, 0).await.lines().skip(2).collect::<Vec<_>>(),
        second.lines().skip(2).collect::<Vec<_>>()
    );
    assert_status(
        client.export_config(pb::ExportConfigRequest { version: 3 }).await,
        Code::NotFound,
        "config version 3 does not exist yet; the current version is 2",
    );
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_directory_without_history_starts_it_at_its_current_version(pool: PgPool) {
    let controller = TestController::start(pool.clone()).await;
    let mut client = controller.org_admin().await;
    add_edges(&mut client, &["mail1", "mail2"]).await;
    // As a directory made by a build before configuration history.
    sqlx::query("DELETE FROM config_versions").execute(&pool).await.unwrap();
    let controller = controller.restart().await;
    let mut client = controller.org_admin().await;
    assert!(export(&mut client, 3).await.contains("- name: mail2\n"));
    assert_status(
        client.export_config(pb::ExportConfigRequest { version: 2 }).await,
        Code::NotFound,
        "config version 2 was made before this directory kept configuration history; the oldest version it can \
         export or roll back to is 3",
    );
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn apply_adds_and_removes_edges_that_are_not_live(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    add_edges(&mut client, &["mail1"]).await;
    client.create_send_connector(internet_connector(&["mail1"])).await.unwrap();
    let document = export(&mut client, 0).await;
    let with_mail2 = document.replace(
        "- name: mail1\n  fqdn: mail1.contoso.com\n",
        "- name: mail1\n  fqdn: mail1.contoso.com\n- name: mail2\n  fqdn: mail2.contoso.com\n",
    );
    let applied = client
        .apply_config(pb::ApplyConfigRequest { document: with_mail2.clone(), dry_run: false })
        .await
        .unwrap()
        .into_inner();
    assert!(applied.written);
    let paths: Vec<&str> = applied.differences.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["edges[mail2]"]);
    let edges = client.list_edges(pb::ListEdgesRequest {}).await.unwrap().into_inner().edges;
    assert_eq!(edges.iter().map(|e| e.state.as_str()).collect::<Vec<_>>(), ["pending", "pending"]);

    // An edge waiting to subscribe is live: a document does not remove it.
    client.new_subscription(pb::NewSubscriptionRequest { name: "mail2".into(), ..Default::default() }).await.unwrap();
    let version = controller.config_version().await;
    assert_refused(
        client.apply_config(pb::ApplyConfigRequest { document: document.clone(), dry_run: false }).await,
        Code::InvalidArgument,
        "edges \"mail2\": the document removes edge mail2, which has an outstanding subscription",
    );
    assert_eq!(controller.config_version().await, version);

    // A pending edge without a subscription goes.
    client.remove_edge(pb::RemoveEdgeRequest { name: "mail2".into() }).await.unwrap();
    client.apply_config(pb::ApplyConfigRequest { document: with_mail2, dry_run: false }).await.unwrap();
    let applied = client.apply_config(pb::ApplyConfigRequest { document, dry_run: false }).await.unwrap().into_inner();
    assert!(applied.written);
    let edges = client.list_edges(pb::ListEdgesRequest {}).await.unwrap().into_inner().edges;
    assert_eq!(edges.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["mail1"]);
}
