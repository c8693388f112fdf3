use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use super::*;

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<SystemTime>>);

impl TestClock {
    fn at(time: &str) -> TestClock {
        TestClock(Arc::new(Mutex::new(instant(time))))
    }

    fn set(&self, time: &str) {
        *self.0.lock().unwrap() = instant(time);
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    fn clock(&self) -> Clock {
        let time = self.0.clone();
        Arc::new(move || *time.lock().unwrap())
    }
}

fn instant(time: &str) -> SystemTime {
    humantime::parse_rfc3339(time).unwrap()
}

fn open(dir: &Path, kind: LogKind, settings: LogSettings, clock: &TestClock) -> ProtocolLog {
    ProtocolLog::open_with_clock(dir.to_path_buf(), kind, settings, clock.clock()).unwrap()
}

fn local() -> SocketAddr {
    "10.0.0.5:25".parse().unwrap()
}

fn remote() -> SocketAddr {
    "10.0.0.9:13071".parse().unwrap()
}

/// The names of the directory's files, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn all(dir: &Path, kind: LogKind) -> Vec<String> {
    query(dir, kind, &LogQuery { limit: usize::MAX, ..LogQuery::default() }).unwrap()
}

fn fields(line: &str) -> Vec<String> {
    let records: Vec<_> = csv::records(line).collect();
    assert_eq!(records.len(), 1, "{line:?} is one record");
    records[0].fields.iter().map(|field| field.to_string()).collect()
}

fn touch(dir: &Path, name: &str, size: usize) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, vec![b'x'; size]).unwrap();
    path
}

#[tokio::test]
async fn writes_the_header_and_records_with_sequence_numbers() {
    let dir = TempDir::new().unwrap();
    let clock = TestClock::at("2026-11-29T01:37:30.123Z");
    let log = open(dir.path(), LogKind::Receive, LogSettings::default(), &clock);
    let mut session = log.session("EDGE\\Inet", "08C90C1F1DDBCC2A", local(), remote());
    assert!(session.is_enabled());

    session.record(Event::Connect, "", "");
    session.record(Event::Sent, "220 EDGE.contoso.com ready", "");
    clock.advance(Duration::from_millis(156));
    session.record(Event::Received, "EHLO woodgrovebank.com", "");
    session.record(Event::Information, "", "TLS negotiation succeeded");
    session.record(Event::Disconnect, "", "");
    log.flush().await;

    assert_eq!(names(dir.path()), ["RECV20261129-1.LOG"]);
    let expected = "#Software: DomainSec edge\r\n\
        #Version: 1\r\n\
        #Log-type: SMTP Receive Protocol Log\r\n\
        #Date: 2026-11-29T01:37:30.123Z\r\n\
        #Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n\
        2026-11-29T01:37:30.123Z,EDGE\\Inet,08C90C1F1DDBCC2A,0,10.0.0.5:25,10.0.0.9:13071,+,,\r\n\
        2026-11-29T01:37:30.123Z,EDGE\\Inet,08C90C1F1DDBCC2A,1,10.0.0.5:25,10.0.0.9:13071,>,220 EDGE.contoso.com ready,\r\n\
        2026-11-29T01:37:30.279Z,EDGE\\Inet,08C90C1F1DDBCC2A,2,10.0.0.5:25,10.0.0.9:13071,<,EHLO woodgrovebank.com,\r\n\
        2026-11-29T01:37:30.279Z,EDGE\\Inet,08C90C1F1DDBCC2A,3,10.0.0.5:25,10.0.0.9:13071,*,,TLS negotiation succeeded\r\n\
        2026-11-29T01:37:30.279Z,EDGE\\Inet,08C90C1F1DDBCC2A,4,10.0.0.5:25,10.0.0.9:13071,-,,\r\n";
    assert_eq!(read(dir.path(), "RECV20261129-1.LOG"), expected);
}

#[tokio::test]
async fn numbers_each_session_from_zero_and_keeps_sessions_apart() {
    let dir = TempDir::new().unwrap();
    let clock = TestClock::at("2026-11-29T01:37:30.123Z");
    let log = open(dir.path(), LogKind::Receive, LogSettings::default(), &clock);
    let mut first = log.session("EDGE\\Inet", "AAAAAAAAAAAAAAAA", local(), remote());
    let mut second = log.clone().session("EDGE\\Inet", "BBBBBBBBBBBBBBBB", local(), remote());

    first.record(Event::Connect, "", "");
    second.record(Event::Connect, "", "");
    first.record(Event::Sent, "220 ready", "");
    second.record(Event::Sent, "220 ready", "");
    log.flush().await;

    let sequence: Vec<(String, String)> = all(dir.path(), LogKind::Receive)
        .iter()
        .map(|line| fields(line))
        .map(|f| (f[2].clone(), f[3].clone()))
        .collect();
    let expected =
        [("AAAAAAAAAAAAAAAA", "0"), ("BBBBBBBBBBBBBBBB", "0"), ("AAAAAAAAAAAAAAAA", "1"), ("BBBBBBBBBBBBBBBB", "1")];
    assert_eq!(sequence, expected.map(|(session, number)| (session.to_string(), number.to_string())));
}

#[tokio::test]
async fn quotes_fields_holding_commas_quotes_and_line_breaks() {
    let dir = TempDir::new().unwrap();
    let clock = TestClock::at("2007-01-18T19:06:09.281Z");
    let log = open(dir.path(), LogKind::Receive, LogSettings::default(), &clock);
    let mut session = log.session("EDGE\\Inet", "08C90C1F1DDBCC2A", local(), remote());

    session.record(Event::Information, "CN=mail.woodgrovebank.com, O=Woodgrove", "Remote certificate");
    session.record(Event::Received, "MAIL FROM:<\"odd,name\"@woodgrovebank.com>", "");
    session.record(Event::Information, "two\r\nlines", "");
    log.flush().await;

    let lines = all(dir.path(), LogKind::Receive);
    assert_eq!(
        lines,
        [
            "2007-01-18T19:06:09.281Z,EDGE\\Inet,08C90C1F1DDBCC2A,0,10.0.0.5:25,10.0.0.9:13071,*,\
             \"CN=mail.woodgrovebank.com, O=Woodgrove\",Remote certificate",
            "2007-01-18T19:06:09.281Z,EDGE\\Inet,08C90C1F1DDBCC2A,1,10.0.0.5:25,10.0.0.9:13071,<,\
             \"MAIL FROM:<\"\"odd,name\"\"@woodgrovebank.com>\",",
            "2007-01-18T19:06:09.281Z,EDGE\\Inet,08C90C1F1DDBCC2A,2,10.0.0.5:25,10.0.0.9:13071,*,\"two\r\nlines\",",
        ]
    );
    assert_eq!(fields(&lines[1])[7], "MAIL FROM:<\"odd,name\"@woodgrovebank.com>");
    assert_eq!(fields(&lines[2])[7], "two\r\nlines");
}

#[tokio::test]
async fn a_full_file_continues_in_the_next_numbered_file() {
    let dir = TempDir::new().unwrap();
    let clock = TestClock::at("2026-11-29T01:37:30.123Z");
    let settings = LogSettings { max_file_size: 1024, ..LogSettings::default() };
    let log = open(dir.path(), LogKind::Receive, settings, &clock);
    let mut session = log.session("EDGE\\Inet", "08C90C1F1DDBCC2A", local(), remote());

    for _ in 0..20 {
        session.record(Event::Received, "RCPT TO:<someone@contoso.com>", "");
    }
    log.flush().await;

    let names = names(dir.path());
    assert!(names.len() >= 3, "{names:?}");
    for (index, name) in names.iter().enumerate() {
        assert_eq!(name, &format!("RECV20261129-{}.LOG", index + 1));
        assert!(std::fs::metadata(dir.path().join(name)).unwrap().len() <= 1024, "{name} is at most max_file_size");
        assert!(read(dir.path(), name).starts_with("#Software: DomainSec edge\r\n"), "{name} has a header");
    }
    let sequence: Vec<String> = all(dir.path(), LogKind::Receive).iter().map(|line| fields(line)[3].clone()).collect();
    assert_eq!(sequence, (0..20).map(|n| n.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_new_utc_day_starts_a_new_file() {
    let dir = TempDir::new().unwrap();
    let clock = TestClock::at("2026-11-29T23:59:59.900Z");
    let log = open(dir.path(), LogKind::Send, LogSettings::default(), &clock);
    let mut session = log.session("EDGE\\To Internet", "08C90C1F1DDBCC2A", local(), remote());

    session.record(Event::Sent, "QUIT", "");
    clock.set("2026-11-30T00:00:00.100Z");
    session.record(Event::Received, "221 Bye", "");
    log.flush().await;

    assert_eq!(names(dir.path()), ["SEND20261129-1.LOG", "SEND20261130-1.LOG"]);
    let second = read(dir.path(), "SEND20261130-1.LOG");
    assert!(second.contains("#Log-type: SMTP Send Protocol Log\r\n#Date: 2026-11-30T00:00:00.100Z\r\n"), "{second}");
    assert!(second.ends_with(",1,10.0.0.5:25,10.0.0.9:13071,<,221 Bye,\r\n"), "{second}");
}

#[tokio::test]
async fn a_restarted_log_starts_after_the_files_of_the_day() {
    let dir = TempDir::new().unwrap();
    touch(dir.path(), "RECV20261129-1.LOG", 10);
    touch(dir.path(), "RECV20261129-4.LOG", 10);
    let clock = TestClock::at("2026-11-29T08:00:00.000Z");
    let log = open(dir.path(), LogKind::Receive, LogSettings::default(), &clock);

    log.session("EDGE\\Inet", "08C90C1F1DDBCC2A", local(), remote()).record(Event::Connect, "", "");
    log.flush().await;

    assert_eq!(names(dir.path()), ["RECV20261129-1.LOG", "RECV20261129-4.LOG", "RECV20261129-5.LOG"]);
}

#[tokio::test]
async fn deletes_files_past_max_age_when_opened() {
    let dir = TempDir::new().unwrap();
    touch(dir.path(), "RECV20261028-3.LOG", 10); // ended 2026-10-29T00:00Z: 31 days before now
    touch(dir.path(), "RECV20261029-1.LOG", 10); // ends 2026-10-30T00:00Z: 30 days before now
    touch(dir.path(), "SEND20200101-1.LOG", 10); // the other log's file
    touch(dir.path(), "notes.txt", 10);
    let clock = TestClock::at("2026-11-29T00:00:00.000Z");
    let settings = LogSettings { max_age: Duration::from_secs(30 * 86_400), ..LogSettings::default() };
    let log = open(dir.path(), LogKind::Receive, settings, &clock);
    log.flush().await;

    assert_eq!(names(dir.path()), ["RECV20261029-1.LOG", "SEND20200101-1.LOG", "notes.txt"]);
}

#[tokio::test]
async fn deletes_files_past_max_age_when_a_new_file_starts() {
    let dir = TempDir::new().unwrap();
    let clock = TestClock::at("2026-11-01T12:00:00.000Z");
    let settings = LogSettings { max_age: Duration::from_secs(7 * 86_400), ..LogSettings::default() };
    let log = open(dir.path(), LogKind::Receive, settings, &clock);
    let mut session = log.session("EDGE\\Inet", "08C90C1F1DDBCC2A", local(), remote());

    session.record(Event::Connect, "", "");
    clock.set("2026-11-05T12:00:00.000Z");
    session.record(Event::Sent, "220 ready", "");
    log.flush().await;
    assert_eq!(names(dir.path()), ["RECV20261101-1.LOG", "RECV20261105-1.LOG"]);

    clock.set("2026-11-09T12:00:00.000Z");
    session.record(Event::Disconnect, "", "");
    log.flush().await;
    assert_eq!(names(dir.path()), ["RECV20261105-1.LOG", "RECV20261109-1.LOG"]);
}

#[tokio::test]
async fn keeps_the_directory_under_its_size_cap_by_deleting_the_oldest_files() {
    let dir = TempDir::new().unwrap();
    let clock = TestClock::at("2026-11-29T01:37:30.123Z");
    let settings = LogSettings { max_file_size: 1024, max_directory_size: 4096, ..LogSettings::default() };
    let log = open(dir.path(), LogKind::Receive, settings, &clock);
    let mut session = log.session("EDGE\\Inet", "08C90C1F1DDBCC2A", local(), remote());

    for _ in 0..200 {
        session.record(Event::Received, "RCPT TO:<someone@contoso.com>", "");
    }
    log.flush().await;

    let names = names(dir.path());
    let total: u64 = names.iter().map(|name| std::fs::metadata(dir.path().join(name)).unwrap().len()).sum();
    assert!(total <= 4096, "{total} bytes in {names:?}");
    assert!(!names.contains(&"RECV20261129-1.LOG".to_string()), "the oldest file is gone: {names:?}");
    let numbers: Vec<u32> = names
        .iter()
        .map(|name| name.trim_start_matches("RECV20261129-").trim_end_matches(".LOG").parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|pair| pair[1] == pair[0] + 1), "the newest files are kept: {names:?}");
    let last = all(dir.path(), LogKind::Receive).pop().unwrap();
    assert_eq!(fields(&last)[3], "199");
}

#[tokio::test]
async fn starts_a_new_file_when_the_directory_was_removed() {
    let dir = TempDir::new().unwrap();
    let logs = dir.path().join("protocol").join("receive");
    let clock = TestClock::at("2026-11-29T01:37:30.123Z");
    let log = open(&logs, LogKind::Receive, LogSettings::default(), &clock);
    let mut session = log.session("EDGE\\Inet", "08C90C1F1DDBCC2A", local(), remote());
    session.record(Event::Connect, "", "");
    log.flush().await;

    std::fs::remove_dir_all(&logs).unwrap();
    clock.set("2026-11-30T01:00:00.000Z");
    session.record(Event::Disconnect, "", "");
    log.flush().await;

    assert_eq!(names(&logs), ["RECV20261130-1.LOG"]);
    assert_eq!(fields(&all(&logs, LogKind::Receive)[0])[3], "1");
}

#[tokio::test]
async fn query_matches_the_connector_with_or_without_the_server_prefix() {
    let dir = TempDir::new().unwrap();
    let clock = TestClock::at("2026-11-29T01:37:30.123Z");
    let log = open(dir.path(), LogKind::Receive, LogSettings::default(), &clock);
    log.session("EDGE\\Inet", "AAAAAAAAAAAAAAAA", local(), remote()).record(Event::Connect, "", "");
    log.session("EDGE\\Internal", "BBBBBBBBBBBBBBBB", local(), remote()).record(Event::Connect, "", "");
    log.session("Inet", "CCCCCCCCCCCCCCCC", local(), remote()).record(Event::Connect, "", "");
    log.flush().await;

    let sessions = |connector: &str| -> Vec<String> {
        let wanted = LogQuery { connector: Some(connector.into()), ..LogQuery::default() };
        query(dir.path(), LogKind::Receive, &wanted).unwrap().iter().map(|line| fields(line)[2].clone()).collect()
    };
    assert_eq!(sessions("Inet"), ["AAAAAAAAAAAAAAAA", "CCCCCCCCCCCCCCCC"]);
    assert_eq!(sessions("EDGE\\Inet"), ["AAAAAAAAAAAAAAAA"]);
    assert_eq!(sessions("edge\\internal"), ["BBBBBBBBBBBBBBBB"]);
    assert!(sessions("EDGE").is_empty());
    assert!(sessions("Int").is_empty());
}

#[tokio::test]
async fn query_filters_by_session_and_start_time() {
    let dir = TempDir::new().unwrap();
    let clock = TestClock::at("2026-11-28T10:00:00.000Z");
    let log = open(dir.path(), LogKind::Receive, LogSettings::default(), &clock);
    let mut first = log.session("EDGE\\Inet", "AAAAAAAAAAAAAAAA", local(), remote());
    let mut second = log.session("EDGE\\Inet", "BBBBBBBBBBBBBBBB", local(), remote());
    first.record(Event::Connect, "", "");
    second.record(Event::Connect, "", "");
    clock.set("2026-11-29T10:00:00.000Z");
    first.record(Event::Disconnect, "", "");
    clock.set("2026-11-29T10:00:00.001Z");
    second.record(Event::Disconnect, "", "");
    log.flush().await;

    let by_session = LogQuery { session: Some("bbbbbbbbbbbbbbbb".into()), ..LogQuery::default() };
    let lines = query(dir.path(), LogKind::Receive, &by_session).unwrap();
    assert_eq!(lines.iter().map(|line| fields(line)[6].clone()).collect::<Vec<_>>(), ["+", "-"]);

    let since = LogQuery { since: Some(instant("2026-11-29T10:00:00.000Z")), ..LogQuery::default() };
    let lines = query(dir.path(), LogKind::Receive, &since).unwrap();
    assert_eq!(
        lines.iter().map(|line| fields(line)[2].clone()).collect::<Vec<_>>(),
        ["AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB"]
    );

    let later = LogQuery { since: Some(instant("2026-11-29T10:00:00.001Z")), ..LogQuery::default() };
    assert_eq!(query(dir.path(), LogKind::Receive, &later).unwrap().len(), 1);
    assert!(query(dir.path(), LogKind::Send, &LogQuery::default()).unwrap().is_empty(), "the Send log is apart");
}

#[tokio::test]
async fn query_limit_keeps_the_newest_records_across_files() {
    let dir = TempDir::new().unwrap();
    let clock = TestClock::at("2026-11-29T01:37:30.123Z");
    let settings = LogSettings { max_file_size: 1024, ..LogSettings::default() };
    let log = open(dir.path(), LogKind::Receive, settings, &clock);
    let mut session = log.session("EDGE\\Inet", "08C90C1F1DDBCC2A", local(), remote());
    for _ in 0..30 {
        session.record(Event::Received, "RCPT TO:<someone@contoso.com>", "");
    }
    log.flush().await;
    assert!(names(dir.path()).len() > 2);

    let sequence = |limit: usize| -> Vec<String> {
        let newest = LogQuery { limit, ..LogQuery::default() };
        query(dir.path(), LogKind::Receive, &newest).unwrap().iter().map(|line| fields(line)[3].clone()).collect()
    };
    assert_eq!(sequence(3), ["27", "28", "29"]);
    assert_eq!(sequence(12), (18..30).map(|n| n.to_string()).collect::<Vec<_>>());
    assert_eq!(sequence(100).len(), 30);
    assert!(sequence(0).is_empty());
}

#[test]
fn query_of_a_missing_directory_finds_nothing() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("never-written");
    assert!(query(&missing, LogKind::Receive, &LogQuery::default()).unwrap().is_empty());
}

#[test]
fn query_leaves_out_a_record_still_being_written() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("RECV20261129-1.LOG"),
        "#Fields: x\r\n2026-11-29T01:37:30.123Z,EDGE\\Inet,A,0,10.0.0.5:25,10.0.0.9:13071,+,,\r\n\
         2026-11-29T01:37:30.123Z,EDGE\\Inet,A,1,10.0.0.5:25,10.0.0.9:13071,<,\"unfinished",
    )
    .unwrap();
    let lines = all(dir.path(), LogKind::Receive);
    assert_eq!(lines, ["2026-11-29T01:37:30.123Z,EDGE\\Inet,A,0,10.0.0.5:25,10.0.0.9:13071,+,,"]);
}

#[test]
fn a_disabled_session_records_nothing() {
    let mut session = SessionLog::disabled();
    assert!(!session.is_enabled());
    session.record(Event::Connect, "", "");
}

#[test]
fn recording_after_the_writer_is_gone_is_silent() {
    let dir = TempDir::new().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let log = runtime
        .block_on(async { ProtocolLog::open(dir.path().to_path_buf(), LogKind::Receive, LogSettings::default()) });
    let mut session = log.unwrap().session("EDGE\\Inet", "08C90C1F1DDBCC2A", local(), remote());
    drop(runtime);

    session.record(Event::Connect, "", "");
}

#[test]
fn session_ids_are_sixteen_upper_case_hex_digits_and_unique() {
    let ids: Vec<String> = (0..1000).map(|_| new_session_id()).collect();
    for id in &ids {
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)), "{id}");
    }
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
}

#[test]
fn settings_read_from_toml_with_defaults_and_humantime_ages() {
    let settings: LogSettings = toml::from_str("max_age = \"7days\"\nmax_file_size = 1048576").unwrap();
    assert_eq!(settings.max_age, Duration::from_secs(7 * 86_400));
    assert_eq!(settings.max_file_size, 1_048_576);
    assert_eq!(settings.max_directory_size, 250 * 1024 * 1024);

    let defaults: LogSettings = toml::from_str("").unwrap();
    assert_eq!(defaults.max_file_size, 10 * 1024 * 1024);
    assert_eq!(defaults.max_age, Duration::from_secs(30 * 86_400));
    assert!(toml::from_str::<LogSettings>("max_size = 1").is_err(), "unknown fields are refused");
}

#[test]
fn file_names_round_trip_and_others_are_ignored() {
    let name = files::FileName::parse(LogKind::Receive, "RECV20261129-12.LOG").unwrap();
    assert_eq!(name.number, 12);
    assert_eq!(name.render(LogKind::Receive), "RECV20261129-12.LOG");
    assert_eq!(name.day, files::Day::of(instant("2026-11-29T23:59:59.999Z")));
    assert!(files::FileName::parse(LogKind::Send, "RECV20261129-1.LOG").is_none());
    assert!(files::FileName::parse(LogKind::Receive, "RECV20261329-1.LOG").is_none());
    assert!(files::FileName::parse(LogKind::Receive, "RECV2026112-1.LOG").is_none());
    assert!(files::FileName::parse(LogKind::Receive, "RECV20261129-1.txt").is_none());
}
