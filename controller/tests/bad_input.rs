//! Bad input is refused at the API with the field and the rule, and changes nothing.

use controller::testing::TestController;
use proto::admin as pb;
use sqlx::PgPool;
use tonic::Code;

use crate::support::{add_edges, assert_status, inet_connector, internet_connector, list, strings};

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn domain_lists_name_the_bad_entry_and_the_rule(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    let version = controller.config_version().await;
    let cases: [(&[&str], &str); 7] = [
        (&["woodgrovebank.com", "woodgrove..com"], "tls_send_domain_secure_list[1] \"woodgrove..com\": empty label"),
        (
            &["wood grove.com"],
            "tls_send_domain_secure_list[0] \"wood grove.com\": character ' ' is not allowed; labels hold letters, digits and hyphens only",
        ),
        (
            &["-woodgrove.com"],
            "tls_send_domain_secure_list[0] \"-woodgrove.com\": label \"-woodgrove\" starts or ends with a hyphen",
        ),
        (
            &["woodgrovebank"],
            "tls_send_domain_secure_list[0] \"woodgrovebank\": a single-label name is not an internet domain; give the full name, e.g. contoso.com",
        ),
        (
            &["mail.*.woodgrovebank.com"],
            "tls_send_domain_secure_list[0] \"mail.*.woodgrovebank.com\": a wildcard is only allowed as the whole first label, as in *.contoso.com",
        ),
        (
            &["woodgrovebank.com", "WOODGROVEBANK.com"],
            "tls_send_domain_secure_list[1] \"WOODGROVEBANK.com\": duplicate of tls_send_domain_secure_list[0] (woodgrovebank.com)",
        ),
        (&[""], "tls_send_domain_secure_list[0]: empty domain name"),
    ];
    for (values, message) in cases {
        assert_status(
            client
                .set_transport_config(pb::SetTransportConfigRequest {
                    tls_send_domain_secure_list: list(values),
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
            message,
        );
    }
    let long_label = format!("{}.com", "a".repeat(64));
    assert_status(
        client
            .set_transport_config(pb::SetTransportConfigRequest {
                tls_receive_domain_secure_list: list(&[&long_label]),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &format!(
            "tls_receive_domain_secure_list[0] \"{long_label}\": label \"{}\" is 64 characters long; at most 63 are allowed",
            "a".repeat(64)
        ),
    );
    assert_eq!(controller.config_version().await, version, "nothing was written");
    let config = client.get_transport_config(pb::GetTransportConfigRequest {}).await.unwrap().into_inner();
    assert!(config.tls_send_domain_secure_list.is_empty());
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn unicode_domains_become_a_labels(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    let added = client
        .add_accepted_domain(pb::AddAcceptedDomainRequest { domain: "Bücher.example".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.domain, "xn--bcher-kva.example");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn replacing_and_editing_one_list_at_once_is_refused(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    assert_status(
        client
            .set_transport_config(pb::SetTransportConfigRequest {
                tls_send_domain_secure_list: list(&["a.com"]),
                add_tls_send_domain_secure: strings(&["b.com"]),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "tls_send_domain_secure_list: give either the whole list or add_tls_send_domain_secure/remove_tls_send_domain_secure, not both",
    );
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn connector_values_are_checked_field_by_field(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    add_edges(&mut client, &["mail1"]).await;
    let version = controller.config_version().await;

    let mut spec = internet_connector(&["mail1", "mail9"]);
    spec.name = "Partner".into();
    assert_status(
        client.create_send_connector(spec).await,
        Code::InvalidArgument,
        "source_edges[1] \"mail9\": no such edge; `dsctl edge list` shows the edges",
    );
    let mut spec = internet_connector(&["mail1"]);
    spec.address_spaces = vec![];
    assert_status(
        client.create_send_connector(spec).await,
        Code::InvalidArgument,
        "address_spaces: must have at least one entry",
    );
    let mut spec = internet_connector(&["mail1"]);
    spec.smart_hosts = strings(&["relay.contoso.com:2525"]);
    let status = client.create_send_connector(spec).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("domain_secure_enabled \"true\": Domain Security requires DNS routing"));
    let mut spec = internet_connector(&["mail1"]);
    spec.smart_hosts = strings(&["relay.contoso.com:smtp"]);
    spec.domain_secure_enabled = false;
    assert_status(
        client.create_send_connector(spec).await,
        Code::InvalidArgument,
        "smart_hosts[0] \"relay.contoso.com:smtp\": port \"smtp\" is not a number from 1 to 65535",
    );
    let mut spec = internet_connector(&["mail1"]);
    spec.max_message_size = 10;
    assert_status(
        client.create_send_connector(spec).await,
        Code::InvalidArgument,
        "max_message_size \"10\": must be from 1024 to 2147483648 bytes",
    );
    let mut spec = internet_connector(&["mail1"]);
    spec.protocol_logging_level = 42;
    assert_status(
        client.create_send_connector(spec).await,
        Code::InvalidArgument,
        "protocol_logging_level \"42\": unknown or unspecified enumeration value",
    );
    let mut spec = internet_connector(&["mail1"]);
    spec.name = "has space".into();
    assert_status(
        client.create_send_connector(spec).await,
        Code::InvalidArgument,
        "name \"has space\": names are 1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit",
    );

    let mut spec = inet_connector("mail1");
    spec.bindings = strings(&["0.0.0.0:25", "mail1.contoso.com:25"]);
    assert_status(
        client.create_receive_connector(spec).await,
        Code::InvalidArgument,
        "bindings[1] \"mail1.contoso.com:25\": expected ip:port, e.g. 0.0.0.0:25 or [::]:25",
    );
    let mut spec = inet_connector("mail1");
    spec.bindings = vec![];
    assert_status(
        client.create_receive_connector(spec).await,
        Code::InvalidArgument,
        "bindings: must have at least one entry",
    );
    let mut spec = inet_connector("mail1");
    spec.remote_ip_ranges = strings(&["10.1.0.0/8"]);
    assert_status(
        client.create_receive_connector(spec).await,
        Code::InvalidArgument,
        "remote_ip_ranges[0] \"10.1.0.0/8\": host bits are set below the /8 prefix; did you mean 10.0.0.0/8?",
    );
    let mut spec = inet_connector("mail1");
    spec.auth_mechanisms = vec![pb::AuthMechanism::None as i32];
    let status = client.create_receive_connector(spec).await.unwrap_err();
    assert!(status.message().starts_with("domain_secure_enabled \"true\": Domain Security needs 'tls'"));
    let spec = inet_connector("mail7");
    assert_status(
        client.create_receive_connector(spec).await,
        Code::InvalidArgument,
        "edge \"mail7\": no such edge; `dsctl edge list` shows the edges",
    );
    assert_eq!(controller.config_version().await, version, "nothing was written");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_sync_wait_longer_than_the_controller_allows_is_refused(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    assert_status(
        client.sync_edges(pb::SyncEdgesRequest { names: vec![], all: true, timeout_seconds: 301 }).await,
        Code::InvalidArgument,
        "timeout_seconds: 301 is more than the longest wait, 300 s",
    );
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_secure_list_past_its_bound_is_refused_and_one_at_the_bound_is_taken(pool: PgPool) {
    use domainsec_model::transport::MAX_SECURE_LIST_ENTRIES;
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    let names: Vec<String> = (0..MAX_SECURE_LIST_ENTRIES).map(|n| format!("p{n}.example")).collect();
    let full = client
        .set_transport_config(pb::SetTransportConfigRequest {
            tls_send_domain_secure_list: Some(pb::StringList { values: names.clone() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(full.tls_send_domain_secure_list.len(), MAX_SECURE_LIST_ENTRIES);
    // One more, by replacing or by adding: refused, and nothing changes.
    let mut over = names.clone();
    over.push("one-more.example".to_owned());
    assert_status(
        client
            .set_transport_config(pb::SetTransportConfigRequest {
                tls_send_domain_secure_list: Some(pb::StringList { values: over }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "tls_send_domain_secure_list: at most 100000 entries (this change makes 100001)",
    );
    assert_status(
        client
            .set_transport_config(pb::SetTransportConfigRequest {
                add_tls_send_domain_secure: strings(&["one-more.example"]),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "tls_send_domain_secure_list: at most 100000 entries (this change makes 100001)",
    );
    let current = client.get_transport_config(pb::GetTransportConfigRequest {}).await.unwrap().into_inner();
    assert_eq!(current.config_version, full.config_version, "nothing written");
    // A duplicate far down a long list is found (and named by both indexes).
    let mut duplicate = names;
    duplicate[99_999] = "p3.example".to_owned();
    assert_status(
        client
            .set_transport_config(pb::SetTransportConfigRequest {
                tls_send_domain_secure_list: Some(pb::StringList { values: duplicate }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "tls_send_domain_secure_list[99999] \"p3.example\": duplicate of tls_send_domain_secure_list[3] (p3.example)",
    );
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn partner_tools_refuse_bad_questions_before_asking_an_edge(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let mut client = controller.org_admin().await;
    let explain = |from: &str, to: &str, client_ip: &str, binding: &str| pb::ExplainPolicyRequest {
        edge: "mail1".into(),
        from: from.into(),
        to: to.into(),
        client_ip: client_ip.into(),
        binding: binding.into(),
        current_config: false,
    };
    for (request, message) in [
        (explain("kim", "ted@contoso.com", "", ""), "from \"kim\": not an address (local@domain)"),
        (explain("<>", "", "", ""), "to: not an address (local@domain)"),
        (explain("", "ted@contoso.com", "not-an-ip", ""), "client_ip \"not-an-ip\": not an IP address"),
        (explain("", "ted@contoso.com", "", "127.0.0.1"), "binding \"127.0.0.1\": not ip:port"),
        (explain(&format!("{}@x.com", "a".repeat(300)), "ted@contoso.com", "", ""), "from: longer than 256 characters"),
    ] {
        assert_status(client.explain_policy(request).await, Code::InvalidArgument, message);
    }
    let test = |domain: &str, inbound: bool, certificate: &[u8]| pb::TestPartnerRequest {
        edge: "mail1".into(),
        domain: domain.into(),
        inbound,
        certificate: certificate.to_vec(),
    };
    assert_status(
        client.test_partner(test("woodgrove..com", false, b"")).await,
        Code::InvalidArgument,
        "domain \"woodgrove..com\": empty label",
    );
    assert_status(
        client.test_partner(test("woodgrovebank.com", false, b"PEM")).await,
        Code::InvalidArgument,
        "certificate: only with inbound (a certificate the partner sent)",
    );
    assert_status(
        client.test_partner(test("woodgrovebank.com", true, b"not a certificate")).await,
        Code::InvalidArgument,
        "certificate[0]: not an X.509 certificate (PEM or DER)",
    );
    assert_status(
        client.test_partner(test("woodgrovebank.com", true, &vec![b'x'; 2 * 1024 * 1024])).await,
        Code::InvalidArgument,
        "certificate: larger than 1048576 bytes",
    );
    let report =
        pb::PartnerReportRequest { since_seconds: 31 * 24 * 3600, domain: String::new(), expiring_within_days: 0 };
    assert_status(
        client.partner_report(report).await,
        Code::InvalidArgument,
        "since_seconds: 2678400 is longer than the 30 days observations are kept",
    );
}
