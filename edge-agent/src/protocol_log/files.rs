//! The files of one log directory: names, starting the next file, and clean-up.
//!
//! Blocking `std::fs` code: the writer runs it through `spawn_blocking`, [`super::query`] directly.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{LogKind, LogSettings};

/// A UTC calendar day, counted in days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Day(i64);

/// The name of one log file: `RECVyyyymmdd-N.LOG` or `SENDyyyymmdd-N.LOG`.
///
/// Orders as the files were written: by day, then by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct FileName {
    pub day: Day,
    pub number: u32,
}

/// One log file found in the directory.
#[derive(Debug)]
pub(super) struct LogFile {
    pub name: FileName,
    pub path: PathBuf,
    pub size: u64,
}

/// A file just created, its header written.
pub(super) struct NewFile {
    pub name: FileName,
    pub path: PathBuf,
    pub file: File,
    /// Bytes written so far (the header).
    pub size: u64,
}

/// What a clean-up did.
#[derive(Debug, Default)]
pub(super) struct Cleanup {
    /// Files deleted, with the reason.
    pub deleted: Vec<(PathBuf, &'static str)>,
    /// Files that could not be deleted or listed.
    pub failed: Vec<(PathBuf, io::Error)>,
}

/// Lists `kind`'s log files in `dir`, oldest first. Other files are left out.
pub(super) fn list(dir: &Path, kind: LogKind) -> io::Result<Vec<LogFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().and_then(|name| FileName::parse(kind, name)) else {
            continue;
        };
        let metadata = match entry.metadata() {
            Ok(metadata) if metadata.is_file() => metadata,
            // Deleted since read_dir saw it, or not a plain file: not ours to count.
            _ => continue,
        };
        files.push(LogFile { name, path: entry.path(), size: metadata.len() });
    }
    files.sort_by_key(|file| file.name);
    Ok(files)
}

/// Creates the next file for `day` (numbered after any existing one and after `previous`) and
/// writes its header, dated `time`.
pub(super) fn start(
    dir: &Path,
    kind: LogKind,
    day: Day,
    time: SystemTime,
    previous: Option<FileName>,
) -> io::Result<NewFile> {
    std::fs::create_dir_all(dir)?;
    let highest = list(dir, kind)?
        .iter()
        .map(|file| file.name)
        .chain(previous)
        .filter(|name| name.day == day)
        .map(|name| name.number)
        .max()
        .unwrap_or(0);
    let mut number = highest.saturating_add(1);
    loop {
        let name = FileName { day, number };
        let path = dir.join(name.render(kind));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return write_header(name, path, file, kind, time),
            // Another writer took this number between the listing and now: take the next one.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && number < u32::MAX => number += 1,
            Err(error) => return Err(error),
        }
    }
}

/// Deletes `kind`'s files whose newest record is older than `settings.max_age`, then the oldest
/// files until the rest, plus room for one full file, fit in `settings.max_directory_size`.
/// Never deletes `current`.
pub(super) fn clean(
    dir: &Path,
    kind: LogKind,
    settings: &LogSettings,
    now: SystemTime,
    current: Option<FileName>,
) -> Cleanup {
    let mut cleanup = Cleanup::default();
    let files = match list(dir, kind) {
        Ok(files) => files,
        Err(error) => {
            cleanup.failed.push((dir.to_path_buf(), error));
            return cleanup;
        }
    };
    let mut kept = Vec::with_capacity(files.len());
    for file in files.into_iter().filter(|file| Some(file.name) != current) {
        if file.name.day.is_older_than(now, settings.max_age) {
            cleanup.remove(file.path, "older than max_age");
        } else {
            kept.push(file);
        }
    }
    let mut total: u64 = kept.iter().map(|file| file.size).sum();
    for file in kept {
        if total.saturating_add(settings.max_file_size) <= settings.max_directory_size {
            break;
        }
        total -= file.size;
        cleanup.remove(file.path, "over max_directory_size");
    }
    cleanup
}

// === impl Day ===

impl Day {
    /// The UTC day `time` falls on.
    pub fn of(time: SystemTime) -> Day {
        let days = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs() / SECONDS_PER_DAY).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_secs().div_ceil(SECONDS_PER_DAY)).unwrap_or(i64::MAX),
        };
        Day(days)
    }

    /// The first instant after this day; [`UNIX_EPOCH`] for days before it, `None` past what
    /// `SystemTime` holds.
    pub fn end(self) -> Option<SystemTime> {
        let days = u64::try_from(self.0.saturating_add(1)).unwrap_or(0);
        UNIX_EPOCH.checked_add(Duration::from_secs(days.saturating_mul(SECONDS_PER_DAY)))
    }

    /// Whether the end of this day lies more than `age` before `now`.
    fn is_older_than(self, now: SystemTime, age: Duration) -> bool {
        match self.end().and_then(|end| now.duration_since(end).ok()) {
            Some(since_end) => since_end > age,
            None => false,
        }
    }

    fn date(self) -> Option<time::Date> {
        let julian = i32::try_from(self.0.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()?;
        time::Date::from_julian_day(julian).ok()
    }

    fn from_date(date: time::Date) -> Day {
        Day(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
    }
}

// === impl FileName ===

impl FileName {
    /// Reads `PREFIXyyyymmdd-N.LOG` (the extension in any case); `None` for any other name.
    pub fn parse(kind: LogKind, name: &str) -> Option<FileName> {
        let rest = name.strip_prefix(kind.prefix())?;
        let (stem, extension) = rest.rsplit_once('.')?;
        if !extension.eq_ignore_ascii_case("LOG") {
            return None;
        }
        let (date, number) = stem.split_once('-')?;
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year = date[..4].parse().ok()?;
        let month = time::Month::try_from(date[4..6].parse::<u8>().ok()?).ok()?;
        let day = time::Date::from_calendar_date(year, month, date[6..].parse().ok()?).ok()?;
        Some(FileName { day: Day::from_date(day), number: number.parse().ok()? })
    }

    /// The file name, e.g. `RECV20261129-1.LOG`.
    pub fn render(self, kind: LogKind) -> String {
        match self.day.date() {
            Some(date) => {
                format!(
                    "{}{:04}{:02}{:02}-{}.LOG",
                    kind.prefix(),
                    date.year(),
                    u8::from(date.month()),
                    date.day(),
                    self.number
                )
            }
            // Outside what a calendar date can hold: a clock gone very wrong. Still a valid name.
            None => format!("{}{:08}-{}.LOG", kind.prefix(), 0, self.number),
        }
    }
}

// === impl Cleanup ===

impl Cleanup {
    fn remove(&mut self, path: PathBuf, reason: &'static str) {
        match std::fs::remove_file(&path) {
            Ok(()) => self.deleted.push((path, reason)),
            // Someone else removed it already: the goal is met.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => self.failed.push((path, error)),
        }
    }
}

fn write_header(name: FileName, path: PathBuf, mut file: File, kind: LogKind, time: SystemTime) -> io::Result<NewFile> {
    let header = format!(
        "#Software: DomainSec edge{end}#Version: 1{end}#Log-type: {}{end}#Date: {}{end}#Fields: {FIELDS}{end}",
        kind.title(),
        humantime::format_rfc3339_millis(time),
        end = super::csv::LINE_END,
    );
    if let Err(error) = file.write_all(header.as_bytes()) {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(error);
    }
    Ok(NewFile { name, path, file, size: header.len() as u64 })
}

/// The `#Fields:` header: the columns of every record.
pub(super) const FIELDS: &str =
    "date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context";
const SECONDS_PER_DAY: u64 = 24 * 60 * 60;
/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
