//! The writer task: owns the current file, writes records in arrival order, rotates and cleans.
//!
//! It writes through a buffer and flushes whenever the channel is momentarily empty, so under
//! load many records share one write. It never panics and never fsyncs. An I/O error drops the
//! current file, is logged once, and the next record starts the next file; while files cannot
//! be created, records are dropped and creation is retried with a growing pause.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncWriteExt as _, BufWriter};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::files::{self, Cleanup, Day, FileName, NewFile};
use super::{Clock, Command, LogKind, LogSettings, Record};

/// The state of the writer task.
pub(super) struct Writer {
    dir: PathBuf,
    kind: LogKind,
    settings: LogSettings,
    clock: Clock,
    current: Option<Current>,
    /// The last file started, even if it has failed since.
    last: Option<FileName>,
    failure: Option<Failure>,
}

/// The open file.
struct Current {
    name: FileName,
    path: PathBuf,
    out: BufWriter<tokio::fs::File>,
    /// Bytes handed to `out`, header included.
    size: u64,
    records: u64,
    /// Records known to have reached the OS.
    flushed: u64,
}

/// Why records are being dropped, since when, and when to try a new file.
struct Failure {
    dropped: u64,
    retry_at: SystemTime,
    pause: Duration,
}

// === impl Writer ===

impl Writer {
    pub(super) fn new(dir: PathBuf, kind: LogKind, settings: LogSettings, clock: Clock) -> Writer {
        Writer { dir, kind, settings, clock, current: None, last: None, failure: None }
    }

    /// Cleans the directory, then writes until every sender is gone.
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        self.clean().await;
        while let Some(command) = commands.recv().await {
            self.handle(command).await;
            while let Ok(command) = commands.try_recv() {
                self.handle(command).await;
            }
            self.flush().await;
        }
        debug!("protocol log closed");
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Record(record) => self.write(record).await,
            Command::Flush(done) => {
                self.flush().await;
                let _ = done.send(());
            }
        }
    }

    async fn write(&mut self, record: Record) {
        let length = record.line.len() as u64;
        if self.needs_new_file(Day::of(record.time), length) {
            self.start_file(&record).await;
        }
        let Some(current) = self.current.as_mut() else {
            self.count_dropped(1);
            return;
        };
        match current.out.write_all(record.line.as_bytes()).await {
            Ok(()) => {
                current.size += length;
                current.records += 1;
            }
            Err(error) => self.fail(error, 1),
        }
    }

    /// Whether `record` must go to a new file: none is open, its day has passed, or it is full.
    fn needs_new_file(&self, day: Day, length: u64) -> bool {
        match &self.current {
            None => true,
            Some(current) => {
                day > current.name.day
                    || (current.records > 0 && current.size.saturating_add(length) > self.settings.max_file_size)
            }
        }
    }

    /// Closes the current file and starts the next one for `record`, unless a failure says to
    /// wait; then cleans the directory.
    async fn start_file(&mut self, record: &Record) {
        self.close().await;
        let now = (self.clock)();
        if self.failure.as_ref().is_some_and(|failure| now < failure.retry_at) {
            return;
        }
        // A clock stepped back keeps writing under the newest day.
        let day = Day::of(record.time).max(self.last.map_or(Day::of(record.time), |last| last.day));
        let (dir, kind, time, previous) = (self.dir.clone(), self.kind, record.time, self.last);
        let started = blocking(move || files::start(&dir, kind, day, time, previous)).await;
        match started {
            Ok(NewFile { name, path, file, size }) => {
                debug!(file = %path.display(), "started protocol log file");
                self.last = Some(name);
                let out = BufWriter::new(tokio::fs::File::from_std(file));
                self.current = Some(Current { name, path, out, size, records: 0, flushed: 0 });
                self.clean().await;
            }
            Err(error) => self.fail(error, 0),
        }
    }

    /// Flushes and closes the current file, if any.
    async fn close(&mut self) {
        self.flush().await;
        self.current = None;
    }

    /// Hands buffered records to the OS.
    async fn flush(&mut self) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        if let Err(error) = current.out.flush().await {
            self.fail(error, 0);
            return;
        }
        let newly_flushed = current.records - current.flushed;
        current.flushed = current.records;
        if newly_flushed > 0
            && let Some(failure) = self.failure.take()
        {
            info!(dropped = failure.dropped, "protocol log writable again");
        }
    }

    /// Deletes old files and those over the directory cap, sparing the current one.
    async fn clean(&mut self) {
        let (dir, kind, settings, now) = (self.dir.clone(), self.kind, self.settings.clone(), (self.clock)());
        let current = self.current.as_ref().map(|current| current.name);
        let cleanup = blocking(move || Ok(files::clean(&dir, kind, &settings, now, current))).await;
        let Cleanup { deleted, failed } = match cleanup {
            Ok(cleanup) => cleanup,
            Err(error) => Cleanup { deleted: Vec::new(), failed: vec![(self.dir.clone(), error)] },
        };
        for (path, reason) in deleted {
            debug!(file = %path.display(), reason, "deleted protocol log file");
        }
        for (path, error) in failed {
            warn!(file = %path.display(), error = %error, "cannot clean protocol log directory");
        }
    }

    /// Drops the current file after an I/O error and counts the records lost with it (those
    /// buffered but not flushed, plus `also_dropped`). Warns on the first error of a streak.
    fn fail(&mut self, error: io::Error, also_dropped: u64) {
        let now = (self.clock)();
        let current = self.current.take();
        let lost = current.as_ref().map_or(0, |current| current.records - current.flushed) + also_dropped;
        let path = current.as_ref().map_or_else(|| self.dir.clone(), |current| current.path.clone());
        match self.failure.as_mut() {
            Some(failure) => {
                failure.dropped += lost;
                failure.retry_at = now + failure.pause;
                failure.pause = (failure.pause * 2).min(MAX_RETRY_PAUSE);
            }
            None => {
                warn!(file = %path.display(), error = %error, "cannot write protocol log; dropping records until a new file can be written");
                self.failure = Some(Failure { dropped: lost, retry_at: now, pause: FIRST_RETRY_PAUSE });
            }
        }
    }

    fn count_dropped(&mut self, records: u64) {
        if let Some(failure) = self.failure.as_mut() {
            failure.dropped += records;
        }
    }
}

/// Runs blocking file-system work off the runtime's worker threads.
async fn blocking<T, F>(work: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|join| Err(io::Error::other(join)))
}

/// The pause before the second attempt at a new file; it doubles with each further failure.
const FIRST_RETRY_PAUSE: Duration = Duration::from_secs(1);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5 * 60);
