//! Fuzzes the protocol log's CSV (`edge-agent/src/protocol_log/csv.rs`, private)
//! through its public API: `protocol_log::query` (what `dsctl protocol-log`
//! runs) reading a log file, and `ProtocolLog`/`SessionLog` writing one.
//!
//! The first input byte picks the mode:
//! - even: the rest is the text of `RECV20991231-1.LOG`, read back with queries;
//! - odd: a round trip. The rest is split at NUL bytes into a connector id, a
//!   session id, the data and the context of one `<` record (SMTP text a client
//!   controls), written by the real writer task, flushed, and queried back.
//!
//! INVARIANT:
//! - nothing panics and every query returns `Ok`;
//! - a query returns at most `limit` lines; a query with filters returns a
//!   subsequence of what the unfiltered query returns (when that one is not cut
//!   by its limit), and with `limit = 1` the newest (last) line of the same query
//!   without the cut;
//! - round trip: querying by the record's connector and session returns exactly
//!   that one line, and that line, split by this file's own RFC 4180 reader,
//!   gives back `[date-time, connector, session, "0", local, remote, "<", data,
//!   context]` as written.
#![no_main]

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, UNIX_EPOCH},
};

use domainsec_fuzz::scratch_dir;
use edge::protocol_log::{Event, LogKind, LogQuery, LogSettings, ProtocolLog, query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 { read_file(rest) } else { round_trip(rest) }
});

const LOCAL: &str = "10.0.0.5:25";
const REMOTE: &str = "192.0.2.9:13071";

fn read_file(text: &[u8]) {
    let dir = base().join("read");
    fs::create_dir_all(&dir).expect("create the log directory");
    fs::write(dir.join("RECV20991231-1.LOG"), text).expect("write the log file");
    let all = run(&dir, &LogQuery::default());
    let filtered_query = LogQuery {
        connector: Some("Inet".into()),
        session: Some("08C90C1F1DDBCC2A".into()),
        since: Some(UNIX_EPOCH + Duration::from_secs(1_704_067_200)), // 2024-01-01
        limit: 1000,
    };
    let filtered = run(&dir, &filtered_query);
    if all.len() < 1000 {
        let mut rest = all.iter();
        for line in &filtered {
            assert!(rest.any(|l| l == line), "filtered line {line:?} is not among the unfiltered ones {all:?}");
        }
    }
    for (query, full) in [(LogQuery::default(), &all), (filtered_query, &filtered)] {
        let newest = run(&dir, &LogQuery { limit: 1, ..query });
        assert_eq!(newest.as_slice(), &full[full.len().saturating_sub(1)..], "limit 1 is not the newest line");
    }
}

fn round_trip(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let (connector, session) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (record, context) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = base().join(format!("write-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    runtime().block_on(async {
        let log = ProtocolLog::open(dir.clone(), LogKind::Receive, LogSettings::default()).expect("open the log");
        let local = LOCAL.parse().expect("local address");
        let remote = REMOTE.parse().expect("remote address");
        let mut session_log = log.session(connector, session, local, remote);
        session_log.record(Event::Received, record, context);
        drop(session_log);
        log.flush().await;
    });
    let query =
        LogQuery { connector: Some(connector.to_owned()), session: Some(session.to_owned()), since: None, limit: 10 };
    let lines = run(&dir, &query);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(lines.len(), 1, "one record written, {lines:?} read back for {connector:?} / {session:?}");
    let fields = split_csv(&lines[0]);
    let expected = [connector, session, "0", LOCAL, REMOTE, "<", record, context];
    assert_eq!(fields.len(), 9, "{:?} read back as {fields:?}", lines[0]);
    assert_eq!(fields[1..], expected, "{:?} read back as {fields:?}", lines[0]);
}

fn run(dir: &Path, log_query: &LogQuery) -> Vec<String> {
    let lines = query(dir, LogKind::Receive, log_query).expect("query a readable directory");
    assert!(lines.len() <= log_query.limit, "{} lines for limit {}", lines.len(), log_query.limit);
    lines
}

/// RFC 4180 fields of one record (quotes doubled inside quoted fields).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let (mut quoted, mut field_start) = (false, true);
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if field_start => quoted = true,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                field_start = true;
                continue;
            }
            c => field.push(c),
        }
        field_start = false;
    }
    fields.push(field);
    fields
}

/// The log directories of this process, on tmpfs where there is one.
fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| scratch_dir("protocol-log"))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("build the tokio runtime")
    })
}
