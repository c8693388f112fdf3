//! `domainsec-controller init` and `admin-cert issue`, through the real binary.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};

use sqlx::PgPool;

/// The URL of this test's database (DATABASE_URL with the database name replaced).
fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for #[sqlx::test]");
    let database = pool.connect_options().get_database().expect("test database name").to_owned();
    let (server, query) = match base.split_once('?') {
        Some((server, query)) => (server.to_owned(), format!("?{query}")),
        None => (base, String::new()),
    };
    let root = server.rsplit_once('/').map_or(server.as_str(), |(root, _)| root).to_owned();
    format!("{root}/{database}{query}")
}

fn controller(args: &[&str], database_url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_domainsec-controller"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run domainsec-controller")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn init_creates_the_organization_once(pool: PgPool) {
    let url = database_url(&pool);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let output = controller(
        &["init", "--org", "Contoso", "--out-admin", &path("admin.toml"), "--state-dir", &path("state")],
        &url,
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("Initialised organization \"Contoso\""));
    assert_eq!(mode(&dir.path().join("admin.toml")), 0o600, "the credential holds a key");
    assert_eq!(mode(&dir.path().join("state/ca.key")), 0o600);
    assert_eq!(mode(&dir.path().join("state/admin-api.key")), 0o600);
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    let bundle = controller::testing::read_bundle(&dir.path().join("admin.toml"));
    assert_eq!(bundle.role, "org-admin");
    assert_eq!(bundle.controllers, vec!["127.0.0.1:50052".to_owned()]);

    let output = controller(
        &["init", "--org", "Fabrikam", "--out-admin", &path("second.toml"), "--state-dir", &path("state2")],
        &url,
    );
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("this database already holds organization \"Contoso\"; nothing was changed"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!dir.path().join("second.toml").exists(), "no credential written");
    assert!(!dir.path().join("state2").exists(), "no state dir created");
    let name: String = sqlx::query_scalar("SELECT name FROM organization").fetch_one(&pool).await.unwrap();
    assert_eq!(name, "Contoso");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn admin_cert_issue_checks_role_and_scope(pool: PgPool) {
    let url = database_url(&pool);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let state = path("state");
    let output =
        controller(&["init", "--org", "Contoso", "--out-admin", &path("admin.toml"), "--state-dir", &state], &url);
    assert!(output.status.success());

    let output = controller(
        &[
            "admin-cert",
            "issue",
            "--role",
            "server-admin",
            "--name",
            "ops",
            "--out",
            &path("ops.toml"),
            "--state-dir",
            &state,
        ],
        &url,
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--role server-admin needs --edges"));

    let output = controller(
        &[
            "admin-cert",
            "issue",
            "--role",
            "server-admin",
            "--name",
            "ops",
            "--edges",
            "mail1",
            "--out",
            &path("ops.toml"),
            "--state-dir",
            &state,
        ],
        &url,
    );
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("edges[0] \"mail1\": no such edge"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!dir.path().join("ops.toml").exists());

    let output = controller(
        &["admin-cert", "issue", "--role", "superuser", "--name", "x", "--out", &path("x.toml"), "--state-dir", &state],
        &url,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid value 'superuser' for '--role <ROLE>'"), "{stderr}");
    assert!(stderr.contains("[possible values: org-admin, server-admin, view-only]"), "{stderr}");
    assert_eq!(output.status.code(), Some(2), "a usage error");

    let output = controller(
        &[
            "admin-cert",
            "issue",
            "--role",
            "view-only",
            "--name",
            "auditor",
            "--out",
            &path("auditor.toml"),
            "--state-dir",
            &state,
        ],
        &url,
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(mode(&dir.path().join("auditor.toml")), 0o600);
    let output = controller(
        &[
            "admin-cert",
            "issue",
            "--role",
            "view-only",
            "--name",
            "auditor",
            "--out",
            &path("auditor.toml"),
            "--state-dir",
            &state,
        ],
        &url,
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists; choose another --out file"));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM admin_credentials").fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 2, "the first admin and the auditor");

    let output = controller(&["admin-cert", "revoke", "--name", "auditor", "--state-dir", &state], &url);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let output = controller(&["admin-cert", "list", "--state-dir", &state], &url);
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(listing.lines().any(|l| l.starts_with("auditor") && l.contains("revoked")), "{listing}");
    assert!(listing.lines().any(|l| l.starts_with("admin") && l.contains("active")), "{listing}");
    let output = controller(&["admin-cert", "list", "-o", "json", "--state-dir", &state], &url);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let state_of = |name: &str| {
        listed.as_array().unwrap().iter().find(|c| c["name"] == name).map(|c| c["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state_of("auditor").as_deref(), Some("revoked"), "{listed}");
    assert_eq!(state_of("admin").as_deref(), Some("active"), "{listed}");
    assert_eq!(listed[0]["sha256"].as_str().map(str::len), Some(64));
    let output = controller(&["admin-cert", "revoke", "--name", "auditor", "--state-dir", &state], &url);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no active credential for \"auditor\""));
}
