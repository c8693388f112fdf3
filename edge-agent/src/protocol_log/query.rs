//! Reading records back: the newest ones matching a connector, session and start time.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::LogKind;
use super::csv::{self, Record};
use super::files;

/// Which records [`query()`] returns.
#[derive(Debug, Clone)]
pub struct LogQuery {
    /// Only this connector: its full id (`EDGE\Inet`) or the part after the last `\` (`Inet`).
    /// ASCII case is ignored, as Exchange ignores it in names.
    pub connector: Option<String>,
    /// Only this session id (ASCII case ignored).
    pub session: Option<String>,
    /// Only records dated at or after this time.
    pub since: Option<SystemTime>,
    /// At most this many records: the newest that match.
    pub limit: usize,
}

/// Reads matching records (whole CSV lines, no header lines), oldest first; when more than `limit` match, the newest `limit`.
///
/// Lines are returned as written, quoting kept, without their line end. A record still being
/// written (no line end yet) is left out. A missing `dir` holds no records. This is blocking
/// file I/O: call it from `spawn_blocking` in async code.
pub fn query(dir: &Path, kind: LogKind, query: &LogQuery) -> io::Result<Vec<String>> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let files = match files::list(dir, kind) {
        Ok(files) => files,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    // Newest file first, so that a small limit reads few files.
    let mut per_file = Vec::new();
    let mut found = 0;
    for file in files.iter().rev() {
        if found >= query.limit {
            break;
        }
        // Every record of a file is dated on or before the file's day.
        if let (Some(since), Some(end)) = (query.since, file.name.day.end())
            && end <= since
        {
            break;
        }
        let bytes = match std::fs::read(&file.path) {
            Ok(bytes) => bytes,
            // Deleted by the writer's clean-up since the listing.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        let text = String::from_utf8_lossy(&bytes);
        let matching: Vec<String> =
            csv::records(&text).filter(|record| query.matches(record)).map(|record| record.text.to_owned()).collect();
        found += matching.len();
        per_file.push(matching);
    }
    let mut records: Vec<String> = per_file.into_iter().rev().flatten().collect();
    let surplus = records.len().saturating_sub(query.limit);
    records.drain(..surplus);
    Ok(records)
}

// === impl LogQuery ===

impl Default for LogQuery {
    /// Every record, up to the newest [`DEFAULT_QUERY_LIMIT`].
    fn default() -> Self {
        LogQuery { connector: None, session: None, since: None, limit: DEFAULT_QUERY_LIMIT }
    }
}

impl LogQuery {
    fn matches(&self, record: &Record<'_>) -> bool {
        let [date_time, connector, session, ..] = record.fields.as_slice() else {
            return false;
        };
        record.terminated
            && self.connector.as_deref().is_none_or(|wanted| connector_matches(connector, wanted))
            && self.session.as_deref().is_none_or(|wanted| session.eq_ignore_ascii_case(wanted))
            && self.since.is_none_or(|since| humantime::parse_rfc3339(date_time).is_ok_and(|time| time >= since))
    }
}

/// `EDGE\Inet` matches `EDGE\Inet` and `Inet`.
fn connector_matches(connector: &str, wanted: &str) -> bool {
    connector.eq_ignore_ascii_case(wanted)
        || connector.rsplit_once('\\').is_some_and(|(_, name)| name.eq_ignore_ascii_case(wanted))
}

/// The `limit` of [`LogQuery::default`].
pub const DEFAULT_QUERY_LIMIT: usize = 1000;
