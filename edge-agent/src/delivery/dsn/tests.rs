use std::time::Duration;

use super::*;

const ORIGINAL: &[u8] = b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hello\r\n\r\nsecret body text\r\n";

fn recipient(address: &str, action: Action, diagnostic: Option<&str>) -> FailedRecipient {
    FailedRecipient {
        address: address.to_owned(),
        action,
        status: match action {
            Action::Failed => "5.1.1".to_owned(),
            Action::Delayed => "4.4.7".to_owned(),
        },
        diagnostic: diagnostic.map(str::to_owned),
        remote_mta: Some("mx.example.net".to_owned()),
        last_attempt: Some(at(1_751_360_700)),
    }
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn report<'a>(recipients: &'a [FailedRecipient], original: &'a [u8]) -> DeliveryReport<'a> {
    DeliveryReport {
        reporting_mta: "edge.example.org",
        sender: "alice@example.org",
        envelope_id: Some("QQ314159"),
        arrival: at(1_751_360_000),
        recipients,
        original_message: original,
        message_id_domain: "edge.example.org",
    }
}

fn build_text(recipients: &[FailedRecipient], original: &[u8]) -> String {
    String::from_utf8(build(&report(recipients, original), at(1_751_361_000))).unwrap()
}

/// Top-level header lines (unfolded), the boundary and the parts as (headers, body).
struct Parsed {
    headers: Vec<String>,
    boundary: String,
    parts: Vec<(Vec<String>, String)>,
}

fn parse(message: &str) -> Parsed {
    let (head, body) = message.split_once("\r\n\r\n").unwrap();
    let headers = unfold(head);
    let content_type = header(&headers, "Content-Type").unwrap();
    let boundary = content_type.split("boundary=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let delimiter = format!("\r\n--{boundary}");
    let (_preamble, rest) = format!("\r\n{body}")
        .split_once(&format!("{delimiter}\r\n"))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let (inside, epilogue) = rest.split_once(&format!("{delimiter}--\r\n")).unwrap();
    assert_eq!(epilogue, "");
    let parts = inside
        .split(&format!("{delimiter}\r\n"))
        .map(|part| {
            let (part_head, part_body) = part.split_once("\r\n\r\n").unwrap();
            (unfold(part_head), part_body.to_owned())
        })
        .collect();
    Parsed { headers, boundary, parts }
}

fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match lines.last_mut() {
            Some(last) if line.starts_with(' ') => last.push_str(line),
            _ => lines.push(line.to_owned()),
        }
    }
    lines
}

fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines.iter().find_map(|line| {
        let (field_name, value) = line.split_once(':')?;
        field_name.eq_ignore_ascii_case(name).then_some(value.trim())
    })
}

#[test]
fn report_is_multipart_report_with_three_parts() {
    let recipients = [recipient("bob@example.net", Action::Failed, Some("550 5.1.1 user unknown"))];
    let text = build_text(&recipients, ORIGINAL);
    let parsed = parse(&text);

    let content_type = header(&parsed.headers, "Content-Type").unwrap();
    assert!(content_type.starts_with("multipart/report; report-type=delivery-status;"));
    assert!(!parsed.boundary.is_empty());
    assert!(text.contains(&format!("\r\n--{}\r\n", parsed.boundary)));
    let types: Vec<&str> = parsed.parts.iter().map(|(headers, _)| header(headers, "Content-Type").unwrap()).collect();
    assert_eq!(types, ["text/plain; charset=utf-8", "message/delivery-status", "text/rfc822-headers"]);
}

#[test]
fn top_level_headers_address_the_sender_from_mailer_daemon() {
    let recipients = [recipient("bob@example.net", Action::Failed, None)];
    let parsed = parse(&build_text(&recipients, ORIGINAL));
    let h = &parsed.headers;
    assert_eq!(header(h, "From"), Some("Mail Delivery System <MAILER-DAEMON@edge.example.org>"));
    assert_eq!(header(h, "To"), Some("<alice@example.org>"));
    assert_eq!(header(h, "Subject"), Some("Delivery Status Notification (Failure)"));
    assert_eq!(header(h, "Date"), Some("Tue, 01 Jul 2025 09:10:00 +0000"));
    assert_eq!(header(h, "Auto-Submitted"), Some("auto-replied"));
    assert_eq!(header(h, "MIME-Version"), Some("1.0"));
    let message_id = header(h, "Message-ID").unwrap();
    assert!(message_id.starts_with('<') && message_id.ends_with("@edge.example.org>"));
}

#[test]
fn message_ids_and_boundaries_differ_between_reports() {
    let recipients = [recipient("bob@example.net", Action::Failed, None)];
    let first = parse(&build_text(&recipients, ORIGINAL));
    let second = parse(&build_text(&recipients, ORIGINAL));
    assert_ne!(header(&first.headers, "Message-ID"), header(&second.headers, "Message-ID"));
    assert_ne!(first.boundary, second.boundary);
}

#[test]
fn delivery_status_has_message_and_recipient_fields() {
    let recipients = [
        recipient("bob@example.net", Action::Failed, Some("550 5.1.1 user unknown")),
        recipient("carol@example.net", Action::Delayed, None),
    ];
    let parsed = parse(&build_text(&recipients, ORIGINAL));
    let status = &parsed.parts[1].1;
    let blocks: Vec<&str> = status.trim_end().split("\r\n\r\n").collect();
    assert_eq!(blocks.len(), 3, "{status}");

    let message = unfold(blocks[0]);
    assert_eq!(header(&message, "Reporting-MTA"), Some("dns; edge.example.org"));
    assert_eq!(header(&message, "Original-Envelope-Id"), Some("QQ314159"));
    assert_eq!(header(&message, "Arrival-Date"), Some("Tue, 01 Jul 2025 08:53:20 +0000"));

    let bob = unfold(blocks[1]);
    assert_eq!(header(&bob, "Final-Recipient"), Some("rfc822; bob@example.net"));
    assert_eq!(header(&bob, "Action"), Some("failed"));
    assert_eq!(header(&bob, "Status"), Some("5.1.1"));
    assert_eq!(header(&bob, "Remote-MTA"), Some("dns; mx.example.net"));
    assert_eq!(header(&bob, "Diagnostic-Code"), Some("smtp; 550 5.1.1 user unknown"));
    assert_eq!(header(&bob, "Last-Attempt-Date"), Some("Tue, 01 Jul 2025 09:05:00 +0000"));

    let carol = unfold(blocks[2]);
    assert_eq!(header(&carol, "Action"), Some("delayed"));
    assert_eq!(header(&carol, "Status"), Some("4.4.7"));
    assert_eq!(header(&carol, "Diagnostic-Code"), None);
}

#[test]
fn envelope_id_field_is_left_out_without_envid() {
    let recipients = [recipient("bob@example.net", Action::Failed, None)];
    let mut without = report(&recipients, ORIGINAL);
    without.envelope_id = None;
    let text = String::from_utf8(build(&without, at(1_751_361_000))).unwrap();
    assert!(!text.contains("Original-Envelope-Id"));
}

#[test]
fn human_readable_part_names_recipient_and_diagnostic() {
    let recipients = [recipient("bob@example.net", Action::Failed, Some("550 5.1.1 user unknown"))];
    let parsed = parse(&build_text(&recipients, ORIGINAL));
    let human = &parsed.parts[0].1;
    assert!(human.contains("could not be delivered"));
    assert!(human.contains("<bob@example.net>"));
    assert!(human.contains("550 5.1.1 user unknown"));
}

#[test]
fn original_headers_are_included_but_not_the_body() {
    let recipients = [recipient("bob@example.net", Action::Failed, None)];
    let text = build_text(&recipients, ORIGINAL);
    let parsed = parse(&text);
    assert_eq!(parsed.parts[2].1, "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hello\r\n");
    assert!(!text.contains("secret body text"));
}

#[test]
fn every_line_ends_in_crlf_even_for_a_bare_lf_original() {
    let original = b"From: alice@example.org\nSubject: bare\n\nbody\n";
    let recipients = [recipient("bob@example.net", Action::Failed, Some("550 no"))];
    let text = build_text(&recipients, original);
    assert!(text.ends_with("\r\n"));
    for (index, byte) in text.bytes().enumerate() {
        match byte {
            b'\n' => assert_eq!(text.as_bytes()[index - 1], b'\r', "bare LF at {index}"),
            b'\r' => assert_eq!(text.as_bytes()[index + 1], b'\n', "bare CR at {index}"),
            _ => {}
        }
    }
    assert!(text.contains("Subject: bare\r\n"));
    assert!(!text.contains("body"));
}

#[test]
fn diagnostic_with_line_break_cannot_inject_a_header() {
    let recipients = [recipient(
        "bob@example.net\r\nBcc: y@evil.example",
        Action::Failed,
        Some("550 5.1.1 user unknown\r\nBcc: x@evil.example"),
    )];
    let text = build_text(&recipients, ORIGINAL);
    for line in text.split("\r\n") {
        assert!(!line.starts_with("Bcc:"), "injected line: {line:?}");
    }
    assert!(!text.contains("\rBcc") && !text.contains("\nBcc"));
    let parsed = parse(&text);
    let status = unfold(parsed.parts[1].1.split("\r\n\r\n").nth(1).unwrap());
    assert_eq!(header(&status, "Diagnostic-Code"), Some("smtp; 550 5.1.1 user unknown Bcc: x@evil.example"));
}

#[test]
fn long_diagnostic_is_folded_under_line_limits() {
    let diagnostic = format!("550 5.7.1 {}", "rejected by policy ".repeat(100));
    let recipients = [recipient("bob@example.net", Action::Failed, Some(&diagnostic))];
    let text = build_text(&recipients, ORIGINAL);
    assert!(text.split("\r\n").all(|line| line.len() <= 998));
    let parsed = parse(&text);
    let status = unfold(parsed.parts[1].1.split("\r\n\r\n").nth(1).unwrap());
    assert!(header(&status, "Diagnostic-Code").unwrap().starts_with("smtp; 550 5.7.1 rejected by policy rejected"));
}

#[test]
fn subject_says_delay_only_when_every_recipient_is_delayed() {
    let delayed =
        [recipient("bob@example.net", Action::Delayed, None), recipient("carol@example.net", Action::Delayed, None)];
    let parsed = parse(&build_text(&delayed, ORIGINAL));
    assert_eq!(header(&parsed.headers, "Subject"), Some("Delivery Status Notification (Delay)"));
    assert!(parsed.parts[0].1.contains("will keep trying"));

    let mixed =
        [recipient("bob@example.net", Action::Delayed, None), recipient("carol@example.net", Action::Failed, None)];
    let parsed = parse(&build_text(&mixed, ORIGINAL));
    assert_eq!(header(&parsed.headers, "Subject"), Some("Delivery Status Notification (Failure)"));
}

#[test]
fn boundary_does_not_occur_in_the_content() {
    let recipients = [recipient("bob@example.net", Action::Failed, None)];
    let text = build_text(&recipients, ORIGINAL);
    let parsed = parse(&text);
    for (_, body) in &parsed.parts {
        assert!(!body.contains(&parsed.boundary));
    }
}

#[test]
fn header_section_stops_at_the_first_empty_line() {
    assert_eq!(header_section(b"A: 1\r\nB: 2\r\n\r\nbody\r\n"), b"A: 1\r\nB: 2\r\n");
    assert_eq!(header_section(b"A: 1\nB: 2\n\nbody\n"), b"A: 1\nB: 2\n");
    assert_eq!(header_section(b"A: 1\r\nB: 2\r\n"), b"A: 1\r\nB: 2\r\n");
    assert_eq!(header_section(b"A: 1"), b"A: 1");
    assert_eq!(header_section(b"\r\nbody"), b"");
    assert_eq!(header_section(b""), b"");
}

#[test]
fn dates_before_the_epoch_are_clamped() {
    let before = UNIX_EPOCH - Duration::from_secs(10);
    assert_eq!(rfc5322_date(before), "Thu, 01 Jan 1970 00:00:00 +0000");
}
