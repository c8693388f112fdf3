//! Fuzzes the spool's envelope and outcome decoding in
//! `edge-agent/src/queue/spool.rs` (`decode_envelope` and the `state/ID` reader
//! are private) through its public API: the bytes become files in a spool
//! directory on tmpfs, then `Spool::open` + `Spool::recover` read them, as the
//! edge does at start-up.
//!
//! The first input byte picks the mode:
//! - even: the rest is a spool file `msg/NAME`; an optional part after the
//!   separator `\0STATE\0` becomes its outcome file `state/NAME`.
//! - odd: a round trip through the writer. The rest is lines: a sender (empty:
//!   null sender), an `ENVID`, then recipients, each taken only if the SMTP
//!   parser accepts it (`MAIL FROM:<sender> ENVID=…`, `RCPT TO:<rcpt>`), so only
//!   values a client can bring in; an empty line, then the message.
//!
//! INVARIANT:
//! - nothing panics, and `recover` returns `Ok`;
//! - every recovered envelope has the id of the file it was read from (`NAME`,
//!   the upper-case hex that `Spool::new_id` makes; the id names files the edge
//!   later reads, moves and deletes), at least one recipient, an
//!   outcome slot per recipient, a sender and recipients that re-parse from their
//!   `Display` to equal mailboxes, and `read_message(id)` gives the bytes after
//!   the envelope block, `size` of them;
//! - a file that is not recovered is moved to `corrupt/`, not left in `msg/`;
//! - round trip: `store` then `recover` gives back the envelope that was stored,
//!   with no outcome recorded, and `read_message` the message stored.
#![no_main]

use std::{
    fs,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::{Duration, UNIX_EPOCH},
};

use domainsec_fuzz::{clear_spool, scratch_dir};
use edge::{
    queue::spool::{Envelope, Spool},
    smtp::{
        address::Mailbox,
        command::{Command, MailParams},
    },
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    let root = spool_root();
    clear_spool(root);
    if mode % 2 == 0 { recover_raw(root, rest) } else { round_trip(root, rest) }
});

/// The name of the one spool file (a `Spool::new_id` shape).
const NAME: &str = "0018C5E3A1B2F0001ABCD";
const STATE_SEPARATOR: &[u8] = b"\0STATE\0";

fn recover_raw(root: &Path, data: &[u8]) {
    let (message, state) = match find(data, STATE_SEPARATOR) {
        Some(at) => (&data[..at], Some(&data[at + STATE_SEPARATOR.len()..])),
        None => (data, None),
    };
    for dir in ["msg", "state"] {
        fs::create_dir_all(root.join(dir)).expect("create the spool directories");
    }
    fs::write(root.join("msg").join(NAME), message).expect("write the spool file");
    if let Some(state) = state {
        fs::write(root.join("state").join(NAME), state).expect("write the state file");
    }
    let spool = Spool::open(root).expect("open the spool");
    let recovered = spool.recover().expect("recover never fails on file contents");
    assert!(recovered.len() <= 1, "one file gave {} messages", recovered.len());
    let still_in_msg = root.join("msg").join(NAME).exists();
    let Some(found) = recovered.first() else {
        assert!(!still_in_msg, "an unreadable spool file stayed in msg/");
        assert!(root.join("corrupt").join(NAME).exists(), "an unreadable spool file is not in corrupt/");
        return;
    };
    let envelope = &found.envelope;
    if std::env::var_os("FUZZ_SPOOL_ALLOW_FOREIGN_ID").is_some() && envelope.id != NAME {
        return; // to explore past the known finding (README) until it is fixed
    }
    assert_eq!(envelope.id, NAME, "the envelope of msg/{NAME} claims another id: {:?}", envelope.id);
    assert!(!envelope.recipients.is_empty(), "recovered without recipients");
    assert_eq!(found.outcomes.len(), envelope.recipients.len(), "one outcome slot per recipient");
    for mailbox in envelope.sender.iter().chain(&envelope.recipients) {
        let shown = mailbox.to_string();
        assert_eq!(Mailbox::parse(&shown).as_ref(), Ok(mailbox), "recovered mailbox {shown:?} does not re-parse");
    }
    let body = spool.read_message(&envelope.id).expect("read back a recovered message");
    let start = find(message, b"\n\n").expect("a recovered file has an envelope terminator") + 2;
    assert_eq!(body, &message[start..], "read_message does not give the bytes after the envelope");
    assert_eq!(found.size, body.len() as u64, "size");
}

fn round_trip(root: &Path, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (envelope_part, message) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = envelope_part.split('\n');
    let sender = lines.next().unwrap_or_default();
    let envid = lines.next().unwrap_or_default();
    let mail = if envid.is_empty() { format!("MAIL FROM:<{sender}>") } else { format!("MAIL FROM:<{sender}> ENVID={envid}") };
    let Ok(Command::Mail { from, params: MailParams { envelope_id, .. } }) = Command::parse(mail.as_bytes()) else {
        return;
    };
    let mut recipients = Vec::new();
    for line in lines {
        match Command::parse(format!("RCPT TO:<{line}>").as_bytes()) {
            Ok(Command::Rcpt { to }) => recipients.push(to),
            _ => return,
        }
    }
    if recipients.is_empty() {
        return;
    }
    let millis = data.iter().fold(1_700_000_000_000u64, |sum, b| sum.wrapping_mul(31).wrapping_add(u64::from(*b)));
    let envelope = Envelope {
        id: NAME.to_owned(),
        arrival: UNIX_EPOCH + Duration::from_millis(millis % 10_000_000_000_000),
        sender: from,
        envelope_id,
        recipients,
        source: "mail1\\Inet".to_owned(),
        client: "192.0.2.7:4123".parse().ok(),
    };
    let spool = Spool::open(root).expect("open the spool");
    spool.store(&envelope, message.as_bytes()).expect("store");
    let recovered = Spool::open(root).and_then(|spool| spool.recover()).expect("recover");
    assert_eq!(recovered.len(), 1, "stored one message, recovered {}", recovered.len());
    assert_eq!(recovered[0].envelope, envelope, "the envelope changed on its way through the spool");
    assert!(recovered[0].outcomes.iter().all(Option::is_none), "outcomes appeared: {:?}", recovered[0].outcomes);
    assert_eq!(spool.read_message(NAME).expect("read back"), message.as_bytes(), "the message changed");
}

/// The spool directory of this process, the same for every run.
fn spool_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| scratch_dir("spool"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}
