//! What an operator types and sees.

use std::path::Path;

use controller::testing::TestController;
use domainsec_model::Role;
use sqlx::PgPool;

pub(crate) struct Run {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub(crate) async fn dsctl(credentials: Option<&Path>, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dsctl"));
    command.args(args).env_remove("DSCTL_CREDENTIALS");
    if let Some(credentials) = credentials {
        command.arg("--credentials").arg(credentials);
    }
    let output = command.output().await.expect("run dsctl");
    Run {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub(crate) async fn ok(credentials: &Path, args: &[&str]) -> String {
    let run = dsctl(Some(credentials), args).await;
    assert!(run.success, "dsctl {args:?} failed: {}", run.stderr);
    run.stdout
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn the_papers_configuration_through_dsctl(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let admin = controller.org_admin_credentials();
    // Set-TransportConfig -TLSSendDomainSecureList woodgrovebank.com (and the receive list).
    let out = ok(
        &admin,
        &[
            "transport-config",
            "set",
            "--tls-send-domain-secure-list",
            "woodgrovebank.com",
            "--tls-receive-domain-secure-list",
            "woodgrovebank.com",
        ],
    )
    .await;
    assert!(out.contains("TLSSendDomainSecureList     woodgrovebank.com"), "{out}");
    ok(&admin, &["transport-config", "set", "--add-tls-send-domain-secure", "fabrikam.com"]).await;
    let out = ok(&admin, &["-o", "json", "transport-config", "get"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["tls_send_domain_secure_list"], serde_json::json!(["woodgrovebank.com", "fabrikam.com"]));
    assert_eq!(json["tls_receive_domain_secure_list"], serde_json::json!(["woodgrovebank.com"]));
    // The paper's proxycfg -p proxy "<local>": where edges fetch CRLs.
    let out = ok(
        &admin,
        &[
            "transport-config",
            "set",
            "--crl-proxy",
            "http://proxy.contoso.com:3128",
            "--crl-proxy-bypass",
            "<local>;*.contoso.com",
        ],
    )
    .await;
    assert!(out.contains("CRLProxy                    http://proxy.contoso.com:3128"), "{out}");
    assert!(out.contains("CRLProxyBypass              <local>,*.contoso.com"), "{out}");
    let run = dsctl(Some(&admin), &["transport-config", "set", "--crl-proxy", "ftp://proxy"]).await;
    assert!(run.stderr.contains("crl_proxy \"ftp://proxy\": must be http://host:port"), "{}", run.stderr);
    let out = ok(&admin, &["transport-config", "set", "--crl-proxy", "none"]).await;
    assert!(out.contains("CRLProxy                    none (direct)"), "{out}");
    let out = ok(&admin, &["transport-config", "set", "--tls-send-domain-secure-list", ""]).await;
    assert!(out.contains("TLSSendDomainSecureList     -"), "'' clears: {out}");

    ok(&admin, &["accepted-domain", "add", "contoso.com"]).await;
    ok(&admin, &["accepted-domain", "add", "*.mail.contoso.com"]).await;
    let out = ok(&admin, &["accepted-domain", "list"]).await;
    assert!(out.starts_with("DOMAIN"), "{out}");
    assert!(out.contains("contoso.com") && out.contains("*.mail.contoso.com"), "{out}");

    ok(&admin, &["edge", "add", "mail1", "--fqdn", "mail1.contoso.com"]).await;
    ok(
        &admin,
        &[
            "send-connector",
            "new",
            "Internet",
            "--address-spaces",
            "*",
            "--dns-routing",
            "--source-edges",
            "mail1",
            "--protocol-logging-level",
            "verbose",
        ],
    )
    .await;
    // Set-SendConnector Internet -DomainSecureEnabled:$True
    let out = ok(&admin, &["send-connector", "set", "Internet", "--domain-secure-enabled", "true"]).await;
    assert!(out.contains("DomainSecureEnabled   true"), "{out}");
    // Set-ReceiveConnector Inet -DomainSecureEnabled:$True -AuthMechanism TLS -PermissionGroups Partners
    ok(
        &admin,
        &[
            "receive-connector",
            "new",
            "Inet",
            "--edge",
            "mail1",
            "--bindings",
            "127.0.0.1:2525",
            "--domain-secure-enabled",
            "true",
            "--auth-mechanism",
            "TLS",
            "--permission-groups",
            "AnonymousUsers,Partners",
            "--max-message-size",
            "20MB",
        ],
    )
    .await;
    let out = ok(&admin, &["receive-connector", "list", "--edge", "mail1"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].contains("127.0.0.1:2525") && lines[1].contains("anonymous-users,partners"), "{out}");
    assert!(lines[1].contains("20 MB"), "{out}");
    let out = ok(&admin, &["-o", "json", "send-connector", "list"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json[0]["name"], "Internet");
    assert_eq!(json[0]["domain_secure_enabled"], true);
    assert_eq!(json[0]["routing"], "dns");

    let out = ok(&admin, &["audit", "--limit", "3"]).await;
    assert!(out.contains("receive-connector.new"), "{out}");
    assert!(out.contains("send-connector.set") && out.contains("domain_secure_enabled: false -> true"), "{out}");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn refusals_say_what_and_why(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let admin = controller.org_admin_credentials();
    let run = dsctl(
        Some(&admin),
        &["transport-config", "set", "--tls-send-domain-secure-list", "woodgrovebank.com,woodgrove..com"],
    )
    .await;
    assert!(!run.success);
    assert_eq!(
        run.stderr.trim(),
        "error: INVALID_ARGUMENT: tls_send_domain_secure_list[1] \"woodgrove..com\": empty label"
    );

    let viewer = controller.issue(Role::ViewOnly, "auditor", &[]).await;
    let run = dsctl(Some(&viewer), &["accepted-domain", "add", "contoso.com"]).await;
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("PERMISSION_DENIED: add accepted domain requires role org-admin; \"auditor\" has role view-only"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: ask an org-admin"), "{}", run.stderr);
    let out = ok(&viewer, &["whoami"]).await;
    assert!(out.contains("view-only"), "{out}");

    let run = dsctl(None, &["transport-config", "get"]).await;
    assert!(!run.success);
    assert!(run.stderr.contains("no credentials: pass --credentials FILE or set DSCTL_CREDENTIALS"), "{}", run.stderr);

    let run = dsctl(Some(&admin), &["transport-config", "set"]).await;
    assert!(!run.success);
    assert!(run.stderr.contains("nothing to set"), "{}", run.stderr);

    let run = dsctl(Some(&admin), &["send-connector", "new", "X", "--max-message-size", "10XB"]).await;
    assert!(!run.success);
    assert!(run.stderr.contains("unknown unit \"XB\""), "{}", run.stderr);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn an_unreachable_controller_is_explained(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let text = std::fs::read_to_string(controller.org_admin_credentials()).unwrap();
    // Port 1 on loopback: nothing listens there.
    let moved = text.replace(&controller.address.to_string(), "127.0.0.1:1");
    let path = controller.dir.path().join("moved.toml");
    std::fs::write(&path, moved).unwrap();
    let run = dsctl(Some(&path), &["transport-config", "get"]).await;
    assert!(!run.success);
    assert!(run.stderr.contains("cannot reach a controller (127.0.0.1:1"), "{}", run.stderr);
    assert!(run.stderr.contains("is `domainsec-controller serve` running there?"), "{}", run.stderr);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn subscribe_an_edge_and_watch_it_sync(pool: PgPool) {
    use std::os::unix::fs::PermissionsExt;

    use edge::{
        control::sync::{EdgeAgent, SyncSettings},
        store::DataDir,
    };

    let controller = TestController::start(pool).await;
    let admin = controller.org_admin_credentials();
    let file = controller.dir.path().join("mail1.subscription");
    let file_arg = file.to_string_lossy().into_owned();
    let out =
        ok(&admin, &["edge", "new-subscription", "mail1", "--fqdn", "mail1.contoso.com", "--out", &file_arg]).await;
    assert!(out.contains("domainsec-edge subscribe --file"), "{out}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "the file holds a secret");
    let run = dsctl(Some(&admin), &["edge", "new-subscription", "mail1", "--out", &file_arg]).await;
    assert!(run.stderr.contains("already exists; choose another --out file"), "{}", run.stderr);

    let data = tempfile::tempdir().unwrap();
    let dir = DataDir::new(data.path().join("mail1"));
    edge::control::subscribe::subscribe(&file, &dir).await.unwrap();
    let out = ok(&admin, &["edge", "list"]).await;
    assert!(out.lines().any(|l| l.starts_with("mail1") && l.contains("subscribed")), "{out}");
    // Subscribed but not running: not in sync, and a script can tell from the exit code.
    let run = dsctl(Some(&admin), &["edge", "test-sync"]).await;
    assert_eq!(run.code, Some(3), "test-sync with an edge behind: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.lines().any(|l| l.starts_with("mail1") && l.contains("no")), "{}", run.stdout);
    assert!(run.stderr.contains("1 edge(s) not in sync: mail1"), "{}", run.stderr);
    // A push it cannot answer: the per-edge table, then exit 4 (no ACK in time).
    let run = dsctl(Some(&admin), &["edge", "sync", "mail1", "--timeout", "2s"]).await;
    assert_eq!(run.code, Some(4), "sync to an edge that is not running: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.lines().any(|l| l.starts_with("mail1") && l.contains("not-connected")), "{}", run.stdout);
    assert!(run.stderr.contains("1 edge(s) did not ACK version"), "{}", run.stderr);
    let run = dsctl(Some(&admin), &["edge", "sync", "mail1", "--timeout", "6m"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("at most 5m (the controller's longest wait)"), "{}", run.stderr);

    let settings =
        SyncSettings { heartbeat_interval: std::time::Duration::from_millis(100), ..SyncSettings::default() };
    let mut agent = EdgeAgent::load(dir, settings).unwrap();
    let mut config = agent.config();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let relay_settings = edge::config::EdgeSettings::default();
    let relay = edge::relay::Relay::start(
        &data.path().join("mail1"),
        &relay_settings,
        agent.config(),
        agent.listening(),
        &shutdown,
    )
    .unwrap();
    agent.attach_relay(relay);
    tokio::spawn(agent.run(shutdown.clone()));
    ok(&admin, &["transport-config", "set", "--tls-receive-domain-secure-list", "woodgrovebank.com"]).await;
    let wait = config.wait_for(|c| c.as_ref().is_some_and(|c| !c.transport.tls_receive_domain_secure_list.is_empty()));
    tokio::time::timeout(std::time::Duration::from_secs(10), wait).await.unwrap().unwrap();

    // Fleet status shows it connected at the current version once recorded.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = ok(&admin, &["fleet", "status"]).await;
        let row = out.lines().find(|l| l.starts_with("mail1")).unwrap_or_default().to_owned();
        if row.contains("(current)") && row.contains("since") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "fleet status never showed mail1 in sync: {out}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let out = ok(&admin, &["edge", "test-sync"]).await;
    assert!(out.lines().any(|l| l.starts_with("mail1") && l.contains("yes")), "{out}");
    let out = ok(&admin, &["edge", "sync", "mail1"]).await;
    assert!(out.lines().any(|l| l.starts_with("mail1") && l.contains("acked")), "{out}");

    // The relay's queue and protocol logs, through the controller.
    let out = ok(&admin, &["queue", "list", "--edge", "mail1"]).await;
    assert_eq!(out.trim(), "the queue of edge mail1 is empty");
    let out = ok(&admin, &["-o", "json", "queue", "list", "--edge", "mail1"]).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap(), serde_json::json!([]));
    let run = dsctl(Some(&admin), &["queue", "remove", "--edge", "mail1", "1A2B"]).await;
    assert!(!run.success);
    assert!(
        run.stderr.contains("FAILED_PRECONDITION: edge mail1: no queued message 1A2B on this edge"),
        "{}",
        run.stderr
    );
    let out = ok(&admin, &["protocol-log", "--edge", "mail1", "--log", "send", "--since", "1h"]).await;
    assert!(out.contains("no records (is the connector's protocol logging level verbose?)"), "{out}");
    let run = dsctl(Some(&admin), &["protocol-log", "--edge", "mail1", "--since", "yesterday"]).await;
    assert!(
        run.stderr.contains("--since \"yesterday\": give a time ago (15m, 2h, 1d) or an RFC 3339 time"),
        "{}",
        run.stderr
    );
    // The paper's counters, from the edge's heartbeats.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let out = loop {
        let out = ok(&admin, &["counters", "--edge", "mail1"]).await;
        if out.contains("Domain-Secured Messages Received") {
            break out;
        }
        assert!(tokio::time::Instant::now() < deadline, "no counters: {out}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    for counter in
        ["Domain-Secured Messages Received", "Domain-Secured Messages Sent", "Domain-Secured Outbound Session Failures"]
    {
        assert!(out.lines().any(|l| l.starts_with(counter) && l.trim_end().ends_with(" 0")), "{counter}: {out}");
    }
    let out = ok(&admin, &["fleet", "status"]).await;
    assert!(out.contains("DOMAIN SECURED (IN/OUT/FAILED)") && out.contains("0/0/0"), "{out}");
    let run = dsctl(Some(&admin), &["queue", "list", "--edge", "mail9"]).await;
    assert!(run.stderr.contains("edge \"mail9\": no such edge"), "{}", run.stderr);
    shutdown.cancel();
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn certificates_through_dsctl(pool: PgPool) {
    use edge::{
        control::sync::{EdgeAgent, SyncSettings},
        store::DataDir,
    };

    let controller = TestController::start(pool).await;
    let admin = controller.org_admin_credentials();
    let file = controller.dir.path().join("mail1.subscription");
    let file_arg = file.to_string_lossy().into_owned();
    ok(&admin, &["edge", "new-subscription", "mail1", "--fqdn", "mail1.contoso.com", "--out", &file_arg]).await;
    let data = tempfile::tempdir().unwrap();
    let dir = DataDir::new(data.path().join("mail1"));
    edge::control::subscribe::subscribe(&file, &dir).await.unwrap();
    let agent = EdgeAgent::load(dir, SyncSettings::default()).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(agent.run(shutdown.clone()));

    let out = ok(
        &admin,
        &[
            "cert",
            "new",
            "--edge",
            "mail1",
            "--subject-name",
            "DC=com,DC=Contoso,CN=mail1.contoso.com",
            "--domain-name",
            "mail.contoso.com",
            "--enable",
            "smtp",
        ],
    )
    .await;
    assert!(out.contains(" new ") && out.contains(" done "), "{out}");
    let out = ok(&admin, &["-o", "json", "cert", "get", "--edge", "mail1"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let thumbprint = json[0]["thumbprint"].as_str().unwrap().to_owned();
    assert_eq!(json[0]["subject"], "DC=com, DC=Contoso, CN=mail1.contoso.com");
    assert_eq!(json[0]["services"], serde_json::json!(["smtp"]));
    assert!(json[0].get("certificate_pem").is_none(), "get shows metadata, export writes the certificate");

    let out = ok(&admin, &["cert", "get", "--edge", "mail1", "--thumbprint", &thumbprint]).await;
    assert!(out.contains("KeyStatus           present"), "{out}");

    let exported = controller.dir.path().join("mail1.cer");
    ok(
        &admin,
        &["cert", "export", "--edge", "mail1", "--thumbprint", &thumbprint, "--path", &exported.to_string_lossy()],
    )
    .await;
    let der = std::fs::read(&exported).unwrap();
    assert_eq!(edge::certificates::thumbprint(&der), thumbprint, "the exported DER is the certificate");

    // A self-signed certificate chains to no trusted root.
    let run = dsctl(Some(&admin), &["cert", "verify", "--edge", "mail1", "--thumbprint", &thumbprint]).await;
    assert!(!run.success);
    assert!(run.stdout.contains("chain: FAILED"), "{}", run.stdout);
    assert!(run.stderr.contains("the certificate did not verify"), "{}", run.stderr);

    let pfx = controller.dir.path().join("bundle.pfx");
    std::fs::write(&pfx, b"x").unwrap();
    let run = dsctl(Some(&admin), &["cert", "import", "--edge", "mail1", "--path", &pfx.to_string_lossy()]).await;
    assert!(run.stderr.contains("a PFX needs --password-file FILE"), "{}", run.stderr);

    let out = ok(&admin, &["cert", "remove", "--edge", "mail1", "--thumbprint", &thumbprint]).await;
    assert!(out.contains(" remove ") && out.contains(" done "), "{out}");
    let out = ok(&admin, &["cert", "get", "--edge", "mail1"]).await;
    assert!(out.contains("(none)"), "{out}");
    shutdown.cancel();
}

#[tokio::test]
async fn completion_scripts_need_no_credentials_and_list_the_enum_words() {
    for shell in ["bash", "zsh", "fish"] {
        let run = dsctl(None, &["completions", shell]).await;
        assert_eq!(run.code, Some(0), "{shell}: {}", run.stderr);
        for word in ["transport-config", "ecdsa-p384", "rsa3072", "verbose"] {
            assert!(run.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let run = dsctl(None, &["completions", "powershell-ise"]).await;
    assert_eq!(run.code, Some(2), "an unknown shell is a usage error: {}", run.stderr);
}
