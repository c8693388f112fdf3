//! The scrub rule against every shape RFC 5322 and RFC 8601 allow a forged mark
//! to take, and a property test over generated header sections.

use proptest::prelude::*;

use super::*;

const ID: &str = "mail1.contoso.com";

fn own() -> OwnNames {
    let domains = [Domain::parse("contoso.com").unwrap()];
    OwnNames::new([ID, "edge-in.contoso.net"], &domains)
}

fn scrubbed(message: &str) -> String {
    String::from_utf8(scrub(message.as_bytes(), &own())).unwrap()
}

/// Each forged header section must lose its forged field and keep the rest.
fn assert_dropped(forged_field: &str) {
    let message = format!("Received: from x\r\n{forged_field}Subject: hi\r\n\r\nbody\r\n");
    assert_eq!(scrubbed(&message), "Received: from x\r\nSubject: hi\r\n\r\nbody\r\n", "kept: {forged_field:?}");
}

#[test]
fn forged_marks_are_removed_with_their_continuation_lines() {
    let message = "Received: from x\r\nX-DomainSec-Auth: partner;\r\n\tdomain=woodgrovebank.com\r\n\
        x-domainsec-auth: again\r\nAuthentication-Results: mail1.contoso.com; x-domainsec=pass\r\n\
        Authentication-Results: mx.fabrikam.com; spf=pass\r\nSubject: hi\r\n\r\n\
        X-DomainSec-Auth: in the body stays\r\n";
    assert_eq!(
        scrubbed(message),
        "Received: from x\r\nAuthentication-Results: mx.fabrikam.com; spf=pass\r\nSubject: hi\r\n\r\n\
         X-DomainSec-Auth: in the body stays\r\n"
    );
}

#[test]
fn a_comment_before_the_authserv_id_does_not_hide_it() {
    assert_dropped("Authentication-Results: (comment) mail1.contoso.com; spf=pass\r\n");
    assert_dropped("Authentication-Results: (a (nested \\) comment) b) mail1.contoso.com; dkim=pass\r\n");
    assert_dropped("Authentication-Results:(x)mail1.contoso.com;spf=pass\r\n");
}

#[test]
fn a_verdict_on_a_continuation_line_is_seen() {
    assert_dropped("Authentication-Results:\r\n\tmail1.contoso.com; spf=pass\r\n");
    assert_dropped("Authentication-Results:\r\n \r\n\tmx.example; x-domainsec=pass\r\n");
    assert_dropped("Authentication-Results: mx.example;\r\n x-domainsec\r\n =pass\r\n");
}

#[test]
fn an_x_domainsec_result_goes_whatever_its_authserv_id() {
    assert_dropped("Authentication-Results: mx.attacker.example; x-domainsec=pass\r\n");
    assert_dropped("Authentication-Results: mx.attacker.example; X-DOMAINSEC=PASS\r\n");
    assert_dropped("Authentication-Results: i; x-domain(split)sec=pass\r\n");
    assert_dropped("ARC-Authentication-Results: i=1; mx.example; x-domainsec=pass\r\n");
    // A `(` inside a quoted string is text to a strict reader: the comment after it
    // still hides nothing (found by the header_scrub fuzz target).
    assert_dropped("Authentication-Results: \"(\" x-dom(c)ainsec=pass\r\n");
}

#[test]
fn other_edges_and_hosts_of_the_organization_are_claimed_too() {
    assert_dropped("Authentication-Results: mail2.contoso.com; spf=pass\r\n");
    assert_dropped("Authentication-Results: contoso.com; spf=pass\r\n");
    assert_dropped("Authentication-Results: MAIL1.CONTOSO.COM.; spf=pass\r\n");
    assert_dropped("Authentication-Results: \"mail1.contoso.com\"; spf=pass\r\n");
    assert_dropped("Authentication-Results: edge-in.contoso.net; spf=pass\r\n");
}

#[test]
fn the_mark_header_goes_in_every_spelling() {
    assert_dropped("X-DOMAINSEC-AUTH: partner\r\n");
    assert_dropped("X-DomainSec-Auth : partner\r\n");
    assert_dropped("X-DomainSec-Auth\t:partner\r\n");
    assert_dropped("X-DomainSec-Auth:\r\n\tpartner; domain=woodgrovebank.com\r\n");
}

#[test]
fn a_forged_field_first_or_last_or_twice_goes() {
    let message = " X-DomainSec-Auth: first\r\nX-DomainSec-Auth: a\r\nX-DomainSec-Auth: b\r\nSubject: s\r\n\
                   Authentication-Results: mx.example; x-domainsec=pass\r\n\r\nbody";
    assert_eq!(scrubbed(message), "Subject: s\r\n\r\nbody");
    let headers_only = "Subject: s\r\nX-DomainSec-Auth: last";
    assert_eq!(scrubbed(headers_only), "Subject: s\r\n");
}

#[test]
fn fields_after_a_white_space_only_line_are_still_header_fields() {
    let message = "Subject: s\r\n \r\nX-DomainSec-Auth: after\r\n\r\nbody";
    assert_eq!(scrubbed(message), "Subject: s\r\n \r\n\r\nbody");
}

#[test]
fn lf_only_messages_are_scrubbed_alike() {
    let message = "Subject: s\nAuthentication-Results: (c)\n mail1.contoso.com; spf=pass\n\nbody\n";
    assert_eq!(scrubbed(message), "Subject: s\n\nbody\n");
}

#[test]
fn foreign_results_and_lookalikes_stay() {
    let kept = "Authentication-Results: mx.fabrikam.com; spf=pass\r\n\
                Authentication-Results: notcontoso.com; dkim=pass\r\n\
                Authentication-Results: contoso.com.evil.example; dkim=pass\r\n\
                X-DomainSec-Authority: unrelated\r\nSubject: s\r\n\r\n";
    assert_eq!(scrubbed(kept), kept);
}

#[test]
fn a_message_without_marks_is_unchanged() {
    let message = "Subject: hi\r\nFrom: a@b.com\r\n\r\nbody\r\n";
    assert_eq!(scrubbed(message), message);
    assert_eq!(scrubbed("Subject: hi\r\n"), "Subject: hi\r\n");
    assert_eq!(scrubbed(""), "");
}

#[test]
fn the_mark_names_the_domain_and_certificate() {
    let mark = mark(ID, "woodgrovebank.com", "ab12");
    assert!(mark.starts_with("X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=ab12\r\n"));
    assert!(mark.contains("Authentication-Results: mail1.contoso.com; x-domainsec=pass"));
    // Our own mark is exactly what scrub removes.
    let message = format!("{mark}Subject: x\r\n\r\nbody");
    assert_eq!(scrubbed(&message), "Subject: x\r\n\r\nbody");
}

// === property test ===

/// An independent reading of the output: unfolded fields of the header section.
fn unfolded_fields(message: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(message);
    let header = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    for line in header.split("\r\n") {
        match fields.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => fields.push(line.to_owned()),
        }
    }
    fields
}

fn no_comments(value: &str) -> String {
    String::from_utf8(strip_comments(value.as_bytes())).unwrap()
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("X-DomainSec-Auth".to_owned()),
        Just("x-domainsec-AUTH".to_owned()),
        Just("Authentication-Results".to_owned()),
        Just("AUTHENTICATION-RESULTS".to_owned()),
        Just("Subject".to_owned()),
        Just("Received".to_owned()),
    ]
    .prop_flat_map(|name| (Just(name), prop_oneof![Just(""), Just(" "), Just("\t")]))
    .prop_map(|(name, space)| format!("{name}{space}"))
}

fn value_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("mail1.contoso.com".to_owned()),
        Just("MAIL2.Contoso.COM".to_owned()),
        Just("mx.example".to_owned()),
        Just("x-domainsec=pass".to_owned()),
        Just("X-DomainSec=Pass".to_owned()),
        Just("spf=pass".to_owned()),
        Just(";".to_owned()),
        Just(" ".to_owned()),
        Just("(comment)".to_owned()),
        Just("(nested (c))".to_owned()),
        Just("\r\n\t".to_owned()),
        Just("\r\n ".to_owned()),
        Just("\"q\"".to_owned()),
    ]
}

fn header_field() -> impl Strategy<Value = String> {
    (field_name(), proptest::collection::vec(value_piece(), 0..8))
        .prop_map(|(name, pieces)| format!("{name}:{}\r\n", pieces.concat()))
}

proptest! {
    #[test]
    fn no_scrubbed_header_carries_a_mark_or_our_results(
        fields in proptest::collection::vec(header_field(), 0..8),
        body in "[a-zA-Z: \r\n-]{0,40}",
    ) {
        let message = format!("{}\r\n{body}", fields.concat());
        let out = scrub(message.as_bytes(), &own());
        let text = String::from_utf8(out.clone()).unwrap();
        prop_assert!(text.ends_with(&format!("\r\n{body}")), "the body changed");
        for field in unfolded_fields(&out) {
            let Some((name, value)) = field.split_once(':') else { continue };
            let name = name.trim().to_ascii_lowercase();
            prop_assert_ne!(&name, "x-domainsec-auth");
            if name == "authentication-results" {
                let lower = value.to_ascii_lowercase();
                prop_assert!(!lower.contains("x-domainsec"), "mark kept: {field:?}");
                let id = no_comments(&lower);
                let id = id.trim_start().split([';', ' ', '\t']).next().unwrap_or_default().trim_matches('"');
                prop_assert!(!own().claims(id), "our results kept: {field:?}");
            }
        }
    }
}
