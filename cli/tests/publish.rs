//! `dsctl publish tlsa|mta-sts|tls-rpt` and the TLSA warning of `dsctl cert enable`,
//! as an operator sees them.

use controller::testing::TestController;
use domainsec_model::Role;
use sqlx::PgPool;

use crate::commands::{dsctl, ok};

/// Certificates as an edge reports them: `(thumbprint, not_before year, enabled for
/// SMTP)`, each with its own key.
fn inventory(certificates: &[(&str, i32, bool)]) -> Vec<proto::edge::CertificateInfo> {
    certificates
        .iter()
        .map(|(thumbprint, year, smtp)| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["mail1.contoso.com".to_owned()]).unwrap();
            params.not_before = rcgen::date_time_ymd(*year, 1, 1);
            params.not_after = rcgen::date_time_ymd(2099, 1, 1);
            let certificate = params.self_signed(&key).unwrap();
            proto::edge::CertificateInfo {
                thumbprint: (*thumbprint).to_owned(),
                sha256: "00".repeat(32),
                subject: "CN=mail1.contoso.com".to_owned(),
                issuer: "CN=mail1.contoso.com".to_owned(),
                serial: "01".to_owned(),
                dns_names: vec!["mail1.contoso.com".to_owned()],
                not_before: format!("{year}-01-01T00:00:00Z"),
                not_after: "2099-01-01T00:00:00Z".to_owned(),
                services: if *smtp { vec!["smtp".to_owned()] } else { vec![] },
                key_status: "present".to_owned(),
                friendly_name: String::new(),
                certificate_pem: certificate.pem(),
            }
        })
        .collect()
}

/// Stands in for the edge's inventory report.
async fn report(controller: &TestController, edge: &str, infos: &[proto::edge::CertificateInfo]) {
    let id: sqlx::types::Uuid = sqlx::query_scalar("SELECT id FROM edges WHERE name = $1")
        .bind(edge)
        .fetch_one(&controller.pool)
        .await
        .unwrap();
    controller::db::certificates::replace_inventory(&controller.pool, id, infos).await.unwrap();
}

async fn organization(controller: &TestController) {
    let admin = controller.org_admin_credentials();
    ok(&admin, &["accepted-domain", "add", "contoso.com"]).await;
    ok(&admin, &["edge", "add", "mail1", "--fqdn", "mail1.contoso.com"]).await;
    ok(&admin, &["edge", "add", "mail2", "--fqdn", "mail2.contoso.com"]).await;
    ok(&admin, &["receive-connector", "new", "Inet", "--edge", "mail1", "--bindings", "0.0.0.0:25"]).await;
}

const CURRENT: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const NEXT: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn publish_tlsa_prints_zone_lines_with_the_next_certificate_marked(pool: PgPool) {
    let controller = TestController::start(pool).await;
    organization(&controller).await;
    report(&controller, "mail1", &inventory(&[(CURRENT, 2025, true), (NEXT, 2026, false)])).await;
    let viewer = controller.issue(Role::ViewOnly, "auditor", &[]).await;

    let out = ok(&viewer, &["-o", "json", "publish", "tlsa"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let records = json["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{out}");
    assert_eq!((records[0]["thumbprint"].as_str(), records[0]["next"].as_bool()), (Some(CURRENT), Some(false)));
    assert_eq!((records[1]["thumbprint"].as_str(), records[1]["next"].as_bool()), (Some(NEXT), Some(true)));
    assert_eq!(records[0]["owner"], "_25._tcp.mail1.contoso.com.");
    assert_eq!((records[0]["usage"].as_u64(), records[0]["selector"].as_u64()), (Some(3), Some(1)));
    let (current, next) = (records[0]["spki_sha256"].as_str().unwrap(), records[1]["spki_sha256"].as_str().unwrap());
    assert_ne!(current, next);
    assert_eq!(
        json["notes"],
        serde_json::json!([
            "edge mail2: no certificate enabled for SMTP (dsctl cert enable --edge mail2 --thumbprint T)"
        ])
    );

    let out = ok(&viewer, &["publish", "tlsa"]).await;
    assert_eq!(
        out,
        format!(
            "; edge mail1: certificate {CURRENT} (enabled for SMTP, not after 2099-01-01T00:00:00Z)\n\
             _25._tcp.mail1.contoso.com. IN TLSA 3 1 1 {current}\n\
             ; edge mail1: certificate {NEXT} (not enabled yet, not after 2099-01-01T00:00:00Z)\n\
             _25._tcp.mail1.contoso.com. IN TLSA 3 1 1 {next} ; next certificate, publish before enabling\n\
             ; edge mail2: no certificate enabled for SMTP (dsctl cert enable --edge mail2 --thumbprint T)\n"
        )
    );
    let out = ok(&viewer, &["publish", "tlsa", "--edge", "mail1", "--port", "2525"]).await;
    assert!(out.contains(&format!("_2525._tcp.mail1.contoso.com. IN TLSA 3 1 1 {current}\n")), "{out}");

    let run = dsctl(Some(&viewer), &["publish", "tlsa", "--edge", "mail9"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: INVALID_ARGUMENT: edge \"mail9\": no such edge; `dsctl edge list` shows the edges\n"
    );
    let run = dsctl(Some(&viewer), &["publish", "tlsa", "--port", "70000"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("INVALID_ARGUMENT: port \"70000\": must be a port from 1 to 65535"), "{}", run.stderr);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn cert_enable_warns_on_a_key_the_published_tlsa_records_miss(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let admin = controller.org_admin_credentials();
    organization(&controller).await;
    let certificates = inventory(&[(CURRENT, 2025, true), (NEXT, 2026, false)]);
    report(&controller, "mail1", &certificates[..1]).await;
    let out = ok(&admin, &["publish", "tlsa", "--edge", "mail1"]).await;
    let current = out.lines().nth(1).unwrap().rsplit(' ').next().unwrap().to_owned();
    report(&controller, "mail1", &certificates).await;

    let run = dsctl(Some(&admin), &["cert", "enable", "--edge", "mail1", "--thumbprint", NEXT, "--no-wait"]).await;
    assert_eq!(run.code, Some(0), "a warning does not change the exit code: {}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "warning: the published TLSA records for mail1.contoso.com (3 1 1 {}…) do not match this certificate's \
             key; publish \"_25._tcp.mail1.contoso.com. IN TLSA 3 1 1 ",
            &current[..16]
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.ends_with("and wait for the DNS TTL before enabling, or DANE senders will defer mail\n"));
    assert!(run.stdout.contains("enable") && run.stdout.contains("queued"), "{}", run.stdout);
    let run =
        dsctl(Some(&admin), &["-o", "json", "cert", "enable", "--edge", "mail1", "--thumbprint", NEXT, "--no-wait"])
            .await;
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(json[0]["warnings"][0].as_str().unwrap().starts_with("the published TLSA records for mail1"), "{json}");

    // The current key matches a printed record: no warning, no field.
    let run =
        dsctl(Some(&admin), &["-o", "json", "cert", "enable", "--edge", "mail1", "--thumbprint", CURRENT, "--no-wait"])
            .await;
    assert_eq!(run.stderr, "");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(json[0].get("warnings").is_none(), "{json}");
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn publish_mta_sts_prints_the_records_and_the_policy(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let admin = controller.org_admin_credentials();
    organization(&controller).await;
    let out = ok(&admin, &["-o", "json", "publish", "mta-sts", "--mode", "enforce"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = json["id"].as_str().unwrap().to_owned();
    assert_eq!(json["changed"], true);
    assert_eq!(json["max_age_seconds"], 604_800);
    assert_eq!(json["mx"], serde_json::json!(["mail1.contoso.com"]));
    assert_eq!(json["policy"], "version: STSv1\r\nmode: enforce\r\nmx: mail1.contoso.com\r\nmax_age: 604800\r\n");
    assert_eq!(json["records"][0]["line"], format!("_mta-sts.contoso.com. IN TXT \"v=STSv1; id={id}\""));

    let out = ok(&admin, &["publish", "mta-sts", "--mode", "enforce", "--max-age", "1week"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with(&format!("; MTA-STS policy id {id} (unchanged, id kept; published ")), "{out}");
    assert_eq!(lines[1], format!("_mta-sts.contoso.com. IN TXT \"v=STSv1; id={id}\""));
    assert!(lines[2].starts_with("; the policy, served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt"), "{out}");
    assert_eq!(lines[3..], ["; version: STSv1", "; mode: enforce", "; mx: mail1.contoso.com", "; max_age: 604800"]);

    let run = dsctl(Some(&admin), &["publish", "mta-sts", "--mode", "enforce", "--max-age", "400d"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("INVALID_ARGUMENT: max_age_seconds \"34560000\": at most 31557600 seconds"),
        "{}",
        run.stderr
    );
    let run = dsctl(Some(&admin), &["publish", "mta-sts", "--mode", "strict"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("invalid value 'strict' for '--mode <MODE>'"), "{}", run.stderr);
    let viewer = controller.issue(Role::ViewOnly, "auditor", &[]).await;
    let run = dsctl(Some(&viewer), &["publish", "mta-sts", "--mode", "none"]).await;
    assert_eq!(run.code, Some(5), "{}", run.stderr);
    assert!(run.stderr.contains("publish the MTA-STS policy requires role org-admin"), "{}", run.stderr);
}

#[sqlx::test(migrator = "controller::db::MIGRATOR")]
async fn publish_tls_rpt_prints_a_record_and_refuses_other_schemes(pool: PgPool) {
    let controller = TestController::start(pool).await;
    let admin = controller.org_admin_credentials();
    let out = ok(&admin, &["publish", "tls-rpt", "--rua", "mailto:tlsrpt@contoso.com"]).await;
    assert_eq!(out, "; no accepted domain to publish for (dsctl accepted-domain add)\n");
    organization(&controller).await;
    let out =
        ok(&admin, &["publish", "tls-rpt", "--rua", "mailto:tlsrpt@contoso.com,https://reports.contoso.com/tlsrpt"])
            .await;
    assert_eq!(
        out,
        "_smtp._tls.contoso.com. IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@contoso.com,https://reports.contoso.com/tlsrpt\"\n"
    );
    let out = ok(&admin, &["-o", "json", "publish", "tls-rpt", "--rua", "mailto:tlsrpt@contoso.com"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["records"][0]["owner"], "_smtp._tls.contoso.com.");
    let run = dsctl(Some(&admin), &["publish", "tls-rpt", "--rua", "http://reports.contoso.com/"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: INVALID_ARGUMENT: rua[0] \"http://reports.contoso.com/\": must be a mailto: or https: URI (RFC 8460 section 3)\n"
    );
}
