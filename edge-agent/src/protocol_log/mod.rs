//! Send and Receive protocol logs in Exchange's CSV shape.
//!
//! When a connector's `ProtocolLoggingLevel` is `Verbose`, every SMTP session it carries writes
//! one line per event to `RECVyyyymmdd-N.LOG` (Receive) or `SENDyyyymmdd-N.LOG` (Send) under the
//! directory given to [`ProtocolLog::open`], in the shape Exchange 2007 uses:
//!
//! ```text
//! #Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context
//! 2007-01-18T19:06:09.281Z,EDGE\Inet,08C90C1F1DDBCC2A,8,10.0.0.5:25,10.0.0.9:13071,*,,TLS negotiation succeeded
//! ```
//!
//! Sessions hand their lines to one writer task over an unbounded channel, so logging never
//! blocks or fails a session. The writer rotates by size and by day, deletes files older than
//! [`LogSettings::max_age`] and keeps the directory under [`LogSettings::max_directory_size`].
//!
//! # Layout
//! - `mod.rs`: the handles sessions use ([`ProtocolLog`], [`SessionLog`]) and the settings.
//! - `writer`: the writer task (buffering, flushing, I/O errors).
//! - `files`: file names, opening the next file, age and directory-size clean-up.
//! - `csv`: quoting fields and splitting a file into records.
//! - `query`: reading records back ([`query`]).

mod csv;
mod files;
mod query;
mod writer;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

pub use query::{DEFAULT_QUERY_LIMIT, LogQuery, query};

/// Which of the two protocol logs a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// Outbound sessions (Send connectors): `SEND*.LOG`.
    Send,
    /// Inbound sessions (Receive connectors): `RECV*.LOG`.
    Receive,
}

/// What a record describes, written as Exchange's one-character event code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The session's connection was established (`+`).
    Connect,
    /// The session's connection was closed (`-`).
    Disconnect,
    /// The edge sent a line to the peer (`>`).
    Sent,
    /// The edge received a line from the peer (`<`).
    Received,
    /// Something the edge noted about the session, such as the TLS outcome (`*`).
    Information,
}

/// Size and age limits of one protocol log directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A file that would grow beyond this many bytes is closed and the next one (`-N+1`) started.
    pub max_file_size: u64,
    /// Files whose newest record is older than this are deleted (e.g. `"30days"`).
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// The oldest files are deleted so that the directory's log files stay under this many bytes.
    pub max_directory_size: u64,
}

/// A cheap handle on one protocol log directory and its writer task.
#[derive(Clone)]
pub struct ProtocolLog {
    sender: mpsc::UnboundedSender<Command>,
    clock: Clock,
}

/// The log of one SMTP session: numbers its records and hands them to the writer.
pub struct SessionLog {
    inner: Option<SessionInner>,
}

/// Where the writer takes the time from: the system clock, or a test's hand-moved one.
pub(crate) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A new session id: 16 upper-case hex digits, unique in this process.
///
/// Like Exchange's, the first id is the current time in 100 ns ticks since 1601 (a Windows
/// `FILETIME`), so ids also differ between runs; each later id adds one.
pub fn new_session_id() -> String {
    static BASE: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let ticks = since_epoch.as_nanos() / 100 + FILETIME_TICKS_AT_UNIX_EPOCH;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    });
    format!("{:016X}", base.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed)))
}

// === impl Event ===

impl Event {
    /// Exchange's code for this event: `+`, `-`, `>`, `<` or `*`.
    pub fn code(self) -> char {
        match self {
            Event::Connect => '+',
            Event::Disconnect => '-',
            Event::Sent => '>',
            Event::Received => '<',
            Event::Information => '*',
        }
    }
}

// === impl LogKind ===

impl LogKind {
    /// The file name prefix: `SEND` or `RECV`.
    pub fn prefix(self) -> &'static str {
        match self {
            LogKind::Send => "SEND",
            LogKind::Receive => "RECV",
        }
    }

    /// The `#Log-type:` header text.
    pub fn title(self) -> &'static str {
        match self {
            LogKind::Send => "SMTP Send Protocol Log",
            LogKind::Receive => "SMTP Receive Protocol Log",
        }
    }
}

// === impl LogSettings ===

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_age: DEFAULT_MAX_AGE,
            max_directory_size: DEFAULT_MAX_DIRECTORY_SIZE,
        }
    }
}

// === impl ProtocolLog ===

impl ProtocolLog {
    /// Spawns the writer task (must be called inside a tokio runtime). Creates `dir`.
    ///
    /// Files are opened when the first record arrives; files past `max_age` are deleted now.
    pub fn open(dir: PathBuf, kind: LogKind, settings: LogSettings) -> std::io::Result<ProtocolLog> {
        ProtocolLog::open_with_clock(dir, kind, settings, Arc::new(SystemTime::now))
    }

    /// [`ProtocolLog::open`] with the time taken from `clock` (tests move it by hand).
    pub(crate) fn open_with_clock(
        dir: PathBuf,
        kind: LogKind,
        settings: LogSettings,
        clock: Clock,
    ) -> std::io::Result<ProtocolLog> {
        std::fs::create_dir_all(&dir)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let span = tracing::info_span!("protocol_log", kind = kind.prefix(), dir = %dir.display());
        let writer = writer::Writer::new(dir, kind, settings, clock.clone());
        tokio::spawn(writer.run(receiver).instrument(span));
        Ok(ProtocolLog { sender, clock })
    }

    /// A per-session writer; `connector` is shown as-is (e.g. "mail1\\Inet").
    pub fn session(&self, connector: &str, session_id: &str, local: SocketAddr, remote: SocketAddr) -> SessionLog {
        let mut session = String::new();
        csv::push_field(&mut session, connector);
        session.push(',');
        csv::push_field(&mut session, session_id);
        let endpoints = format!("{local},{remote}");
        SessionLog {
            inner: Some(SessionInner {
                sender: self.sender.clone(),
                clock: self.clock.clone(),
                session,
                endpoints,
                sequence: 0,
            }),
        }
    }

    /// Resolves once every record sent before the call is written and flushed to the OS (tests, shutdown).
    ///
    /// Returns at once if the writer task has ended.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.sender.send(Command::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }
}

// === impl SessionLog ===

impl SessionLog {
    /// A writer that records nothing (connector logging level None).
    pub fn disabled() -> SessionLog {
        SessionLog { inner: None }
    }

    /// Whether [`SessionLog::record`] writes anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Records one line; never blocks and never fails the session (if the writer is gone, drop silently).
    pub fn record(&mut self, event: Event, data: &str, context: &str) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let time = (inner.clock)();
        let mut line = String::with_capacity(80 + inner.session.len() + data.len() + context.len());
        let _ = write!(
            line,
            "{},{},{},{},{},",
            humantime::format_rfc3339_millis(time),
            inner.session,
            inner.sequence,
            inner.endpoints,
            event.code()
        );
        csv::push_field(&mut line, data);
        line.push(',');
        csv::push_field(&mut line, context);
        line.push_str(csv::LINE_END);
        inner.sequence += 1;
        let _ = inner.sender.send(Command::Record(Record { time, line }));
    }
}

/// What sessions and [`ProtocolLog::flush`] send to the writer task.
enum Command {
    /// One formatted line, with the time it carries (which picks the file's date).
    Record(Record),
    /// Flush what came before, then answer.
    Flush(oneshot::Sender<()>),
}

/// One formatted line, terminator included.
struct Record {
    time: SystemTime,
    line: String,
}

/// An enabled [`SessionLog`].
struct SessionInner {
    sender: mpsc::UnboundedSender<Command>,
    clock: Clock,
    /// `connector-id,session-id`, quoted as needed.
    session: String,
    /// `local-endpoint,remote-endpoint`.
    endpoints: String,
    sequence: u64,
}

const DEFAULT_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
const DEFAULT_MAX_DIRECTORY_SIZE: u64 = 250 * 1024 * 1024;
/// 100 ns ticks from 1601-01-01 to 1970-01-01.
const FILETIME_TICKS_AT_UNIX_EPOCH: u128 = 116_444_736_000_000_000;

#[cfg(test)]
mod tests;
