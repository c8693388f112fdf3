//! Configuration history through dsctl: `audit show`, `config export`, `config
//! apply [--dry-run]` and `config rollback` against a real controller and database.

use std::path::{Path, PathBuf};

use controller::testing::TestController;
use domainsec_model::Role;
use sqlx::PgPool;

use crate::commands::{dsctl, ok};

/// The paper's configuration, made one command at a time (one version each).
async fn papers_configuration(controller: &TestController) -> PathBuf {
    let admin = controller.org_admin_credentials();
    let root = controller.dir.path().join("fabrikam-root.pem");
    std::fs::write(&root, ca_certificate("Fabrikam Root CA")).unwrap();
    for args in [
        &["transport-config", "set", "--tls-send-domain-secure-list", "woodgrovebank.com,fabrikam.com"][..],
        &["transport-config", "set", "--tls-receive-domain-secure-list", "woodgrovebank.com"],
        &["accepted-domain", "add", "contoso.com"],
        &["edge", "add", "mail1", "--fqdn", "mail1.contoso.com"],
        &["edge", "add", "mail2", "--fqdn", "mail2.contoso.com"],
        &[
            "send-connector",
            "new",
            "Internet",
            "--address-spaces",
            "*",
            "--dns-routing",
            "--source-edges",
            "mail1,mail2",
        ],
        &["send-connector", "set", "Internet", "--domain-secure-enabled", "true"],
        &[
            "receive-connector",
            "new",
            "Inet",
            "--edge",
            "mail1",
            "--bindings",
            "0.0.0.0:25",
            "--domain-secure-enabled",
            "true",
            "--auth-mechanism",
            "tls",
            "--permission-groups",
            "anonymous-users,partners",
        ],
        &["trusted-root", "add", "--path", root.to_str().unwrap()],
    ] {
        ok(&admin, args).await;
    }
    admin
}

/// A self-signed CA certificate (PEM) for trusted roots.
fn ca_certificate(name: &str) -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

async fn export(admin: &Path, args: &[&str]) -> String {
    ok(admin, &[&["config", "export"][..], args].concat()).await
}

/// Writes `text` to a file in the test dir and returns its path as an argument.
fn file(controller: &TestController, name: &str, text: &str) -> String {
    let path = controller.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The document without its comment header (which names the version).
fn body(document: &str) -> String {
    document.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n")
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn export_then_apply_of_an_unchanged_organization_changes_nothing(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let admin = papers_configuration(&controller).await;
    let version = controller.config_version().await;
    let audit_rows = controller.audit_rows().await;

    let document = export(&admin, &[]).await;
    assert!(
        document.starts_with(&format!("# DomainSec configuration of organization Contoso, config version {version}."))
    );
    for expected in [
        "schema: domainsec.config/v1\n",
        "organization: Contoso\n",
        "  tls_send_domain_secure_list:\n  - woodgrovebank.com\n  - fabrikam.com\n",
        "- name: mail1\n  fqdn: mail1.contoso.com\n",
        "  source_edges:\n  - mail1\n  - mail2\n",
        "  subject: CN=Fabrikam Root CA\n",
        "  certificate_pem: |\n    -----BEGIN CERTIFICATE-----\n",
    ] {
        assert!(document.contains(expected), "{expected:?} not in:\n{document}");
    }
    assert!(!document.contains("PRIVATE KEY"), "{document}");

    let path = file(&controller, "org.yaml", &document);
    let out = ok(&admin, &["config", "apply", "-f", &path, "--dry-run"]).await;
    assert_eq!(out, format!("no changes (config version {version})\n"));
    let out = ok(&admin, &["config", "apply", "-f", &path]).await;
    assert_eq!(out, format!("no changes (config version {version})\n"), "no version bump for an unchanged document");
    assert_eq!(controller.config_version().await, version);
    assert_eq!(controller.audit_rows().await, audit_rows);

    // JSON is YAML too: the -o json export applies as well.
    let json = export(&admin, &["-o", "json"]).await;
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["schema"], "domainsec.config/v1");
    let path = file(&controller, "org.json", &json);
    let out = ok(&admin, &["-o", "json", "config", "apply", "-f", &path, "--dry-run"]).await;
    let reply: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reply["differences"], serde_json::json!([]));
    assert_eq!(reply["written"], false);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_changed_document_shows_its_differences_and_applies_as_one_change(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let admin = papers_configuration(&controller).await;
    let version = controller.config_version().await;
    let audit_rows = controller.audit_rows().await;
    let document = export(&admin, &[]).await;
    let changed = document
        .replace("  - woodgrovebank.com\n  - fabrikam.com\n", "  - woodgrovebank.com\n  - tailspintoys.com\n")
        .replace("accepted_domains:\n- contoso.com\n", "accepted_domains:\n- contoso.com\n- '*.mail.contoso.com'\n")
        .replace(
            "  protocol_logging_level: none\n  source_edges:",
            "  protocol_logging_level: verbose\n  source_edges:",
        )
        .replace(
            "receive_connectors:\n",
            "receive_connectors:\n- edge: mail2\n  name: Inet\n  bindings: ['0.0.0.0:25']\n  auth_mechanisms: [tls]\n  \
             domain_secure_enabled: true\n  permission_groups: [anonymous-users, partners]\n",
        );
    assert_ne!(changed, document);
    let path = file(&controller, "changed.yaml", &changed);
    let expected = "accepted_domains\n  + *.mail.contoso.com\n\
                    receive_connectors[mail2/Inet]\n  + auth_mechanisms: [tls]\n  + bindings: [0.0.0.0:25]\n  \
                    + domain_secure_enabled: true\n  + edge: mail2\n  + fqdn: null\n  + max_message_size: 10485760\n  \
                    + name: Inet\n  + permission_groups: [anonymous-users, partners]\n  \
                    + protocol_logging_level: none\n  + remote_ip_ranges: []\n\
                    send_connectors[Internet].protocol_logging_level\n  - none\n  + verbose\n\
                    transport.tls_send_domain_secure_list\n  - fabrikam.com\n  + tailspintoys.com\n";

    let out = ok(&admin, &["config", "apply", "-f", &path, "--dry-run"]).await;
    assert_eq!(
        out,
        format!("{expected}\ndry run: 4 changes from the document, nothing written (config version stays {version})\n")
    );
    assert_eq!(controller.config_version().await, version, "a dry run writes nothing");
    assert_eq!(controller.audit_rows().await, audit_rows);

    let out = ok(&admin, &["config", "apply", "-f", &path]).await;
    let applied = version + 1;
    assert!(out.starts_with(expected), "{out}");
    assert!(out.contains(&format!("applied the document: 4 changes as config version {applied} (dsctl audit show ")));
    assert_eq!(controller.config_version().await, applied, "one change, one version");
    assert_eq!(controller.audit_rows().await, audit_rows + 1, "one audit entry");
    let out = ok(&admin, &["-o", "json", "transport-config", "get"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["tls_send_domain_secure_list"], serde_json::json!(["woodgrovebank.com", "tailspintoys.com"]));
    let out = ok(&admin, &["receive-connector", "list", "--edge", "mail2"]).await;
    assert!(out.lines().any(|l| l.starts_with("mail2  Inet")), "{out}");
    let out = ok(&admin, &["config", "apply", "-f", &path]).await;
    assert_eq!(out, format!("no changes (config version {applied})\n"), "the directory now holds the document");

    // The audit entry is one config.apply, and `audit show` prints the same differences.
    let out = ok(&admin, &["-o", "json", "audit", "--limit", "1"]).await;
    let entries: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(entries[0]["action"], "config.apply");
    let id = entries[0]["id"].as_i64().unwrap().to_string();
    let out = ok(&admin, &["audit", "show", &id]).await;
    assert!(out.contains("Action         config.apply\n"), "{out}");
    assert!(out.contains(&format!("ConfigVersion  {applied}\n")), "{out}");
    assert!(out.ends_with(&format!("\n{expected}")), "{out}");

    // Atomic: a document whose last write fails (a binding mail1's Inet already
    // listens on, for the same remote IPs) leaves even its first change unwritten.
    let clash = export(&admin, &[])
        .await
        .replace("  - tailspintoys.com\n", "  - tailspintoys.com\n  - northwindtraders.com\n")
        .replace(
            "receive_connectors:\n",
            "receive_connectors:\n- edge: mail1\n  name: Inet2\n  bindings: ['0.0.0.0:25']\n  auth_mechanisms: [tls]\n  \
             permission_groups: [anonymous-users]\n",
        );
    let path = file(&controller, "clash.yaml", &clash);
    for dry_run in [true, false] {
        let args = [&["config", "apply", "-f", &path][..], if dry_run { &["--dry-run"][..] } else { &[][..] }].concat();
        let run = dsctl(Some(&admin), &args).await;
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(
            run.stderr.contains("INVALID_ARGUMENT: receive_connectors[mail1/Inet2].bindings[0] \"0.0.0.0:25\": receive connector \"Inet\" on this edge already listens there"),
            "dry run {dry_run}: {}",
            run.stderr
        );
    }
    assert_eq!(controller.config_version().await, applied);
    let out = ok(&admin, &["transport-config", "get"]).await;
    assert!(!out.contains("northwindtraders.com"), "nothing of a refused document is written: {out}");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn a_bad_document_changes_nothing_and_names_the_field(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let admin = papers_configuration(&controller).await;
    let document = export(&admin, &[]).await;
    let version = controller.config_version().await;
    let audit_rows = controller.audit_rows().await;
    let cases = [
        (
            "a bad domain in a list",
            document.replace("  - fabrikam.com\n", "  - fabrikam.com\n  - woodgrove..com\n"),
            "transport.tls_send_domain_secure_list[2] \"woodgrove..com\": empty label",
        ),
        (
            "a receive connector on an unknown edge",
            document.replace("- edge: mail1\n  name: Inet\n", "- edge: mail9\n  name: Inet\n"),
            "receive_connectors[0].edge \"mail9\": not one of this document's edges (edges[].name)",
        ),
        (
            "another organization",
            document.replace("organization: Contoso\n", "organization: Fabrikam\n"),
            "organization \"Fabrikam\": this directory holds organization \"Contoso\"; a document from another \
             organization is never applied",
        ),
        (
            "an older schema",
            document.replace("schema: domainsec.config/v1\n", "schema: domainsec.config/v0\n"),
            "schema \"domainsec.config/v0\": this controller applies domainsec.config/v1 documents only",
        ),
        (
            "an unknown field",
            document.replace(
                "  domain_secure_enabled: true\n  protocol_logging_level: none\n  source_edges:",
                "  domain_secure_enabled: true\n  colour: blue\n  protocol_logging_level: none\n  source_edges:",
            ),
            "document: send_connectors[0]: unknown field `colour`",
        ),
        (
            "Domain Security through a smart host",
            document.replace("  smart_hosts: []\n", "  smart_hosts: [relay.contoso.com]\n"),
            "send_connectors[0].domain_secure_enabled \"true\": Domain Security requires DNS routing",
        ),
        (
            "a changed edge FQDN",
            document.replace("  fqdn: mail2.contoso.com\n", "  fqdn: mail2.fabrikam.com\n"),
            "edges[mail2].fqdn \"mail2.fabrikam.com\": edge mail2 has FQDN mail2.contoso.com; an edge's FQDN is \
             fixed when it is created",
        ),
        (
            "a private key",
            document.replace(
                "  certificate_pem: |\n",
                "  certificate_pem: |\n    -----BEGIN PRIVATE KEY-----\n    AAAA\n    -----END PRIVATE KEY-----\n",
            ),
            "trusted_roots[0].certificate_pem \"PRIVATE KEY\": holds a private key",
        ),
    ];
    for (what, text, message) in cases {
        assert_ne!(text, document, "{what}: the case changes nothing");
        let path = file(&controller, "bad.yaml", &text);
        for dry_run in [true, false] {
            let args =
                [&["config", "apply", "-f", &path][..], if dry_run { &["--dry-run"][..] } else { &[][..] }].concat();
            let run = dsctl(Some(&admin), &args).await;
            assert_eq!(run.code, Some(2), "{what}: {}", run.stderr);
            assert!(run.stderr.contains(&format!("error: INVALID_ARGUMENT: {message}")), "{what}: {}", run.stderr);
            assert!(run.stdout.is_empty(), "{what}: {}", run.stdout);
        }
    }
    assert_eq!(controller.config_version().await, version);
    assert_eq!(controller.audit_rows().await, audit_rows);
    assert_eq!(body(&export(&admin, &[]).await), body(&document));
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn view_only_may_read_the_history_but_not_apply_or_roll_back(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let admin = papers_configuration(&controller).await;
    let viewer = controller.issue(Role::ViewOnly, "auditor", &[]).await;
    let document = export(&viewer, &[]).await;
    assert_eq!(body(&document), body(&export(&admin, &[]).await));
    let out = ok(&viewer, &["audit", "show", "2"]).await;
    assert!(out.contains("Action         transport-config.set"), "{out}");

    let version = controller.config_version().await;
    let path = file(&controller, "org.yaml", &document.replace("  - fabrikam.com\n", ""));
    for args in [
        &["config", "apply", "-f", &path][..],
        &["config", "apply", "-f", &path, "--dry-run"],
        &["config", "rollback", "--to-version", "2"],
    ] {
        let run = dsctl(Some(&viewer), args).await;
        assert_eq!(run.code, Some(5), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("PERMISSION_DENIED: "), "{}", run.stderr);
        assert!(run.stderr.contains("requires role org-admin; \"auditor\" has role view-only"), "{}", run.stderr);
    }
    let server_admin = controller.issue(Role::ServerAdmin, "mail1-admin", &["mail1"]).await;
    let run = dsctl(Some(&server_admin), &["config", "apply", "-f", &path]).await;
    assert_eq!(run.code, Some(5), "{}", run.stderr);
    assert_eq!(controller.config_version().await, version);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn audit_show_prints_one_change_as_differences(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let admin = papers_configuration(&controller).await;
    let out = ok(&admin, &["-o", "json", "audit", "--limit", "20"]).await;
    let entries: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id_of = |action: &str| {
        let entry = entries.as_array().unwrap().iter().find(|e| e["action"] == action).unwrap();
        entry["id"].as_i64().unwrap().to_string()
    };
    let out = ok(&admin, &["audit", "show", &id_of("send-connector.set")]).await;
    assert!(out.contains("Target         Internet\n"), "{out}");
    assert!(out.ends_with("\ndomain_secure_enabled\n  - false\n  + true\n"), "{out}");
    let out = ok(&admin, &["audit", "show", &id_of("accepted-domain.add")]).await;
    assert!(out.ends_with("\n  + contoso.com\n"), "{out}");
    let out = ok(&admin, &["audit", "show", &id_of("edge.create")]).await;
    assert!(out.contains("  + fqdn: mail"), "{out}");
    let out = ok(&admin, &["-o", "json", "audit", "show", &id_of("send-connector.set")]).await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["action"], "send-connector.set");
    assert_eq!(json["before"]["domain_secure_enabled"], false);
    assert_eq!(
        json["differences"],
        serde_json::json!([{"path": "domain_secure_enabled", "removed": ["false"], "added": ["true"]}])
    );

    let run = dsctl(Some(&admin), &["audit", "show", "9999"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.stderr.trim(), "error: NOT_FOUND: audit entry \"9999\" not found");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn rollback_restores_an_earlier_version_as_a_new_version_and_edges_ack_it(pool: PgPool) {
    use edge::{
        control::sync::{EdgeAgent, SyncSettings},
        store::DataDir,
    };

    let controller = TestController::start(pool.clone()).await;
    let admin = papers_configuration(&controller).await;
    // mail1 subscribes and runs, so the rollback reaches a live edge.
    let subscription = controller.dir.path().join("mail1.subscription");
    ok(&admin, &["edge", "new-subscription", "mail1", "--out", subscription.to_str().unwrap()]).await;
    let data = tempfile::tempdir().unwrap();
    let dir = DataDir::new(data.path().join("mail1"));
    edge::control::subscribe::subscribe(&subscription, &dir).await.unwrap();
    let agent = EdgeAgent::load(dir, SyncSettings::default()).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(agent.run(shutdown.clone()));

    let good = controller.config_version().await.to_string();
    let good_document = export(&admin, &[]).await;
    // Later changes: the lists and the connectors move away from the good version.
    ok(&admin, &["transport-config", "set", "--tls-send-domain-secure-list", "tailspintoys.com"]).await;
    ok(&admin, &["send-connector", "set", "Internet", "--domain-secure-enabled", "false"]).await;
    ok(&admin, &["receive-connector", "remove", "Inet", "--edge", "mail1"]).await;
    let before_rollback = controller.config_version().await;
    let audit_rows = controller.audit_rows().await;

    let out = ok(&admin, &["config", "rollback", "--to-version", &good, "--dry-run"]).await;
    assert!(
        out.contains(
            "transport.tls_send_domain_secure_list\n  - tailspintoys.com\n  + woodgrovebank.com\n  + fabrikam.com\n"
        ),
        "{out}"
    );
    assert!(out.contains("send_connectors[Internet].domain_secure_enabled\n  - false\n  + true\n"), "{out}");
    assert!(out.contains("receive_connectors[mail1/Inet]\n  + auth_mechanisms: [tls]\n"), "{out}");
    assert!(out.ends_with(&format!("dry run: 3 changes from version {good}'s configuration, nothing written (config version stays {before_rollback})\n")), "{out}");
    assert_eq!(controller.config_version().await, before_rollback);

    let out = ok(&admin, &["config", "rollback", "--to-version", &good]).await;
    let rolled_back = before_rollback + 1;
    assert!(
        out.contains(&format!("applied version {good}'s configuration: 3 changes as config version {rolled_back}")),
        "{out}"
    );
    assert_eq!(controller.config_version().await, rolled_back, "a rollback is one new version");
    assert_eq!(controller.audit_rows().await, audit_rows + 1);
    assert_eq!(body(&export(&admin, &[]).await), body(&good_document), "the earlier configuration is back");
    assert_eq!(body(&export(&admin, &["--version", &good]).await), body(&good_document));
    let older = (before_rollback).to_string();
    let out = export(&admin, &["--version", &older]).await;
    assert!(out.contains("  - tailspintoys.com\n") && !out.contains("name: Inet\n"), "{out}");
    let out = ok(&admin, &["-o", "json", "audit", "--limit", "1"]).await;
    let entries: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(entries[0]["action"], "config.rollback");
    assert_eq!(entries[0]["target"], format!("version {good}"));
    // The live edge takes the new version.
    let out = ok(&admin, &["edge", "sync", "mail1", "--timeout", "20s"]).await;
    assert!(out.lines().any(|l| l.starts_with("mail1") && l.contains("acked")), "{out}");
    assert!(out.contains(&rolled_back.to_string()), "{out}");

    // A rollback to where it already is changes nothing.
    let out = ok(&admin, &["config", "rollback", "--to-version", &good]).await;
    assert_eq!(out, format!("no changes (config version {rolled_back})\n"));

    // Versions that cannot be had say why.
    let run = dsctl(Some(&admin), &["config", "rollback", "--to-version", "999"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "NOT_FOUND: config version 999 does not exist yet; the current version is {rolled_back}"
        )),
        "{}",
        run.stderr
    );
    sqlx::query("DELETE FROM config_versions WHERE version < 3").execute(&pool).await.unwrap();
    let run = dsctl(Some(&admin), &["config", "export", "--version", "2"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("NOT_FOUND: config version 2 was made before this directory kept configuration history; the oldest version it can export or roll back to is 3"),
        "{}",
        run.stderr
    );

    // A document never removes a subscribed edge.
    let without_mail1 = good_document
        .replace("- name: mail1\n  fqdn: mail1.contoso.com\n", "")
        .replace("  - mail1\n  - mail2\n", "  - mail2\n")
        .replace("- edge: mail1\n", "- edge: mail2\n");
    let path = file(&controller, "no-mail1.yaml", &without_mail1);
    let run = dsctl(Some(&admin), &["config", "apply", "-f", &path, "--dry-run"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("edges \"mail1\": the document removes edge mail1, which is subscribed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("`dsctl edge remove mail1`"), "{}", run.stderr);
    shutdown.cancel();
}
