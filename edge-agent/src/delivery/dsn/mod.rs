//! Delivery status notifications (RFC 3464).
//!
//! [`build`] writes the whole report as one RFC 5322 message with CRLF line
//! endings: a `multipart/report; report-type=delivery-status` (RFC 6522) with a
//! human-readable `text/plain` part, the `message/delivery-status` part
//! (RFC 3464 fields) and the original header section as `text/rfc822-headers`.
//! The caller sends it with the null reverse-path (`MAIL FROM:<>`).
//!
//! Every value that comes from outside (addresses, remote replies, the
//! envelope id) goes through [`field_value`] first: control characters and line
//! breaks become one space, so no value can start a header line of its own.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use ring::rand::{SecureRandom as _, SystemRandom};
use time::OffsetDateTime;

/// What happened to one recipient (RFC 3464 `Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Delivery failed for good; the message will not be retried.
    Failed,
    /// Delivery has not succeeded yet; the relay keeps trying.
    Delayed,
}

/// One recipient the report is about.
#[derive(Debug, Clone)]
pub struct FailedRecipient {
    /// The recipient address, without angle brackets (`Final-Recipient: rfc822; ...`).
    pub address: String,
    /// Failed or delayed.
    pub action: Action,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1` or `4.4.7`.
    pub status: String,
    /// The remote reply, e.g. `550 5.1.1 user unknown` (`Diagnostic-Code: smtp; ...`).
    pub diagnostic: Option<String>,
    /// The host that gave the reply (`Remote-MTA: dns; ...`).
    pub remote_mta: Option<String>,
    /// When delivery to this recipient was last tried.
    pub last_attempt: Option<SystemTime>,
}

/// Everything a report says about one original message.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryReport<'a> {
    /// The edge's FQDN (`Reporting-MTA`, and the `MAILER-DAEMON` domain).
    pub reporting_mta: &'a str,
    /// The original envelope sender; never empty (no report goes to the null sender).
    pub sender: &'a str,
    /// The `ENVID` given with the original `MAIL FROM`, xtext-decoded.
    pub envelope_id: Option<&'a str>,
    /// When the edge accepted the original message.
    pub arrival: SystemTime,
    /// The recipients the report is about.
    pub recipients: &'a [FailedRecipient],
    /// The whole original message; only its header section is returned.
    pub original_message: &'a [u8],
    /// The right-hand side of the report's `Message-ID`.
    pub message_id_domain: &'a str,
}

/// The whole DSN message (RFC 5322, CRLF line endings), to be sent with the null reverse-path.
pub fn build(report: &DeliveryReport<'_>, now: SystemTime) -> Vec<u8> {
    let human = human_readable(report);
    let status = delivery_status(report);
    let headers = crlf_lines(header_section(report.original_message));
    let boundary = boundary_absent_from(&[&human[..], &status[..], &headers[..]]);
    let eight_bit = [&human, &status, &headers].iter().any(|part| !part.is_ascii());

    let mut out = Vec::with_capacity(human.len() + status.len() + headers.len() + 1024);
    message_headers(&mut out, report, now, &boundary, eight_bit);
    out.extend_from_slice(PREAMBLE);
    body_part(&mut out, &boundary, "text/plain; charset=utf-8", &human);
    body_part(&mut out, &boundary, "message/delivery-status", &status);
    body_part(&mut out, &boundary, "text/rfc822-headers", &headers);
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// Header section of a message (up to the first empty line; handle CRLF and bare LF).
///
/// The result keeps the line ending of the last header line but not the empty
/// line. A message without an empty line is all header section.
pub fn header_section(message: &[u8]) -> &[u8] {
    let mut line_start = 0;
    while line_start < message.len() {
        let rest = &message[line_start..];
        if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            return &message[..line_start];
        }
        match rest.iter().position(|&byte| byte == b'\n') {
            Some(end) => line_start += end + 1,
            None => break,
        }
    }
    message
}

// === message parts ===

fn message_headers(out: &mut Vec<u8>, report: &DeliveryReport<'_>, now: SystemTime, boundary: &str, eight_bit: bool) {
    let subject = if all_delayed(report.recipients) {
        "Delivery Status Notification (Delay)"
    } else {
        "Delivery Status Notification (Failure)"
    };
    let reporting_mta = field_value(report.reporting_mta);
    let message_id = format!("<{}@{}>", unique_token(), field_value(report.message_id_domain));
    let from = format!("Mail Delivery System <MAILER-DAEMON@{reporting_mta}>");
    let content_type = format!("multipart/report; report-type=delivery-status; boundary=\"{boundary}\"");

    field(out, "From", &from);
    field(out, "To", &format!("<{}>", field_value(report.sender)));
    field(out, "Subject", subject);
    field(out, "Date", &rfc5322_date(now));
    field(out, "Message-ID", &message_id);
    field(out, "Auto-Submitted", "auto-replied");
    field(out, "MIME-Version", "1.0");
    field(out, "Content-Type", &content_type);
    if eight_bit {
        field(out, "Content-Transfer-Encoding", "8bit");
    }
    out.extend_from_slice(b"\r\n");
}

fn body_part(out: &mut Vec<u8>, boundary: &str, content_type: &str, content: &[u8]) {
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    field(out, "Content-Type", content_type);
    if !content.is_ascii() {
        field(out, "Content-Transfer-Encoding", "8bit");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(content);
    // The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
    out.extend_from_slice(b"\r\n");
}

fn human_readable(report: &DeliveryReport<'_>) -> Vec<u8> {
    let mut text = format!("This is the mail system at host {}.\r\n", field_value(report.reporting_mta));
    let sections = [
        (
            Action::Failed,
            "Your message could not be delivered to the following recipients.\r\n\
             The mail system will not try again.",
        ),
        (
            Action::Delayed,
            "Your message has not been delivered yet to the following recipients.\r\n\
             The mail system will keep trying; you do not need to resend it.",
        ),
    ];
    for (action, explanation) in sections {
        let mut recipients = report.recipients.iter().filter(|r| r.action == action);
        let Some(first) = recipients.next() else {
            continue;
        };
        text.push_str(&format!("\r\n{explanation}\r\n\r\n"));
        for recipient in std::iter::once(first).chain(recipients) {
            text.push_str(&recipient_explanation(recipient));
        }
    }
    text.into_bytes()
}

fn recipient_explanation(recipient: &FailedRecipient) -> String {
    let mut line = format!("  <{}>: status {}", field_value(&recipient.address), field_value(&recipient.status));
    if let Some(remote_mta) = &recipient.remote_mta {
        line.push_str(&format!(", host {}", field_value(remote_mta)));
    }
    line.push_str("\r\n");
    if let Some(diagnostic) = &recipient.diagnostic {
        line.push_str(&format!("    The remote server said: {}\r\n", field_value(diagnostic)));
    }
    line
}

fn delivery_status(report: &DeliveryReport<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let reporting_mta = format!("dns; {}", field_value(report.reporting_mta));
    field(&mut out, "Reporting-MTA", &reporting_mta);
    if let Some(envelope_id) = report.envelope_id {
        field(&mut out, "Original-Envelope-Id", &field_value(envelope_id));
    }
    field(&mut out, "Arrival-Date", &rfc5322_date(report.arrival));
    for recipient in report.recipients {
        out.extend_from_slice(b"\r\n");
        recipient_fields(&mut out, recipient);
    }
    out
}

fn recipient_fields(out: &mut Vec<u8>, recipient: &FailedRecipient) {
    let action = match recipient.action {
        Action::Failed => "failed",
        Action::Delayed => "delayed",
    };
    let final_recipient = format!("rfc822; {}", field_value(&recipient.address));
    field(out, "Final-Recipient", &final_recipient);
    field(out, "Action", action);
    field(out, "Status", &field_value(&recipient.status));
    if let Some(remote_mta) = &recipient.remote_mta {
        field(out, "Remote-MTA", &format!("dns; {}", field_value(remote_mta)));
    }
    if let Some(diagnostic) = &recipient.diagnostic {
        field(out, "Diagnostic-Code", &format!("smtp; {}", field_value(diagnostic)));
    }
    if let Some(last_attempt) = recipient.last_attempt {
        field(out, "Last-Attempt-Date", &rfc5322_date(last_attempt));
    }
}

// === values and formatting ===

/// A value from outside made safe for one header field: every run of control
/// characters (CR and LF among them) and white space becomes one space, the
/// ends are trimmed, and the length is capped so no line passes 998 bytes.
fn field_value(raw: &str) -> String {
    let mut value = String::with_capacity(raw.len().min(MAX_VALUE_BYTES));
    let mut pending_space = false;
    for c in raw.chars() {
        if c.is_control() || c.is_whitespace() {
            pending_space = !value.is_empty();
            continue;
        }
        let space = usize::from(pending_space);
        if value.len() + space + c.len_utf8() > MAX_VALUE_BYTES {
            break;
        }
        if pending_space {
            value.push(' ');
            pending_space = false;
        }
        value.push(c);
    }
    value
}

/// Writes `Name: value` CRLF, folding at spaces to keep lines near 78 bytes.
/// `value` must already be free of line breaks.
fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    let mut line_len = name.len() + 1;
    let mut words_on_line = 0;
    for word in value.split(' ').filter(|word| !word.is_empty()) {
        if words_on_line > 0 && line_len + 1 + word.len() > FOLD_AT {
            out.extend_from_slice(b"\r\n");
            line_len = 0;
            words_on_line = 0;
        }
        out.push(b' ');
        out.extend_from_slice(word.as_bytes());
        line_len += 1 + word.len();
        words_on_line += 1;
    }
    out.extend_from_slice(b"\r\n");
}

/// Every line ending (CRLF, bare LF, bare CR) as CRLF, and a final CRLF.
fn crlf_lines(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut iter = bytes.iter().peekable();
    while let Some(&byte) = iter.next() {
        match byte {
            b'\r' => {
                iter.next_if_eq(&&b'\n');
                out.extend_from_slice(b"\r\n");
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            _ => out.push(byte),
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// RFC 5322 `date-time` in UTC, e.g. `Tue, 01 Jul 2025 09:05:00 +0000`.
/// Times before 1970 or past 9999 are clamped into that range.
fn rfc5322_date(at: SystemTime) -> String {
    let seconds =
        at.duration_since(UNIX_EPOCH).map(|since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0);
    let date =
        OffsetDateTime::from_unix_timestamp(seconds.min(LAST_FORMATTABLE_SECOND)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let weekday = date.weekday().to_string();
    let month = date.month().to_string();
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        &weekday[..3],
        date.day(),
        &month[..3],
        date.year(),
        date.hour(),
        date.minute(),
        date.second()
    )
}

fn all_delayed(recipients: &[FailedRecipient]) -> bool {
    !recipients.is_empty() && recipients.iter().all(|r| r.action == Action::Delayed)
}

/// A random boundary that occurs nowhere in the parts.
fn boundary_absent_from(parts: &[&[u8]]) -> String {
    loop {
        // Each token differs from the last (the counter), so this ends.
        let boundary = format!("=_dsn_{}", unique_token());
        let occurs = parts.iter().any(|part| contains(part, boundary.as_bytes()));
        if !occurs {
            return boundary;
        }
    }
}

/// Unique per process (counter), across processes (pid, time) and hard to
/// guess (random bytes). Only `[0-9a-f.]`, so it fits a boundary and a Message-ID.
fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_nanos()).unwrap_or(0);
    let mut random = [0u8; 12];
    // Without the system RNG the token stays unique, only guessable.
    let _ = SystemRandom::new().fill(&mut random);
    let random: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{nanos:x}.{:x}.{count:x}.{random}", std::process::id())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

const PREAMBLE: &[u8] = b"This is a MIME-encapsulated delivery status notification.\r\n\r\n";

/// Soft line length for folded fields (RFC 5322 2.1.1).
const FOLD_AT: usize = 78;

/// Longest field value; with the longest field name a line stays under 998 bytes.
const MAX_VALUE_BYTES: usize = 900;

/// 9999-12-31T23:59:59Z, the last second with a four-digit year.
const LAST_FORMATTABLE_SECOND: i64 = 253_402_300_799;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
