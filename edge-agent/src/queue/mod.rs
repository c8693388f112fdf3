//! The durable queue: the spool on disk, the in-memory index of what is due,
//! and the scheduler that hands due messages to delivery with retries and
//! exponential backoff per destination.

pub mod delivery;
pub mod spool;

use std::{
    collections::HashMap,
    io,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime},
};

use tokio::{sync::Notify, time::Instant};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument as _, error, info_span, warn};

use self::spool::{Envelope, Outcome, Spool};
use crate::{config::QueueSettings, metrics::RelayMetrics};

/// A handle on the queue; cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    spool: Spool,
    settings: QueueSettings,
    metrics: Arc<RelayMetrics>,
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    messages: HashMap<String, Entry>,
    /// Destinations in backoff: key → (consecutive failures, retry at).
    destinations: HashMap<String, (u32, Instant)>,
    /// Bytes of message bodies kept in memory for their first attempt.
    fresh_bytes: usize,
}

/// One queued message in memory (the body stays on disk).
struct Entry {
    envelope: Arc<Envelope>,
    outcomes: Vec<Option<Outcome>>,
    size: u64,
    /// The body as received, kept for the first attempt only (saves a read).
    fresh: Option<Arc<Vec<u8>>>,
    next_attempt: Instant,
    attempts: u32,
    in_flight: bool,
    last_error: Option<String>,
}

/// A queued message as `dsctl queue list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Queue id.
    pub id: String,
    /// Envelope sender (empty for the null sender).
    pub sender: String,
    /// Recipients not yet finished.
    pub pending: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Arrival.
    pub arrival: SystemTime,
    /// Attempts so far.
    pub attempts: u32,
    /// Seconds until the next attempt (0: due or in flight).
    pub next_attempt_in: Duration,
    /// The last temporary failure.
    pub last_error: Option<String>,
}

/// A message picked for delivery.
pub struct Due {
    /// Its envelope.
    pub envelope: Arc<Envelope>,
    /// Recipients still pending, by index.
    pub pending: Vec<usize>,
    /// The body if still in memory.
    pub fresh: Option<Arc<Vec<u8>>>,
    /// Attempts before this one.
    pub attempts: u32,
}

impl Queue {
    /// Opens the spool under `root` and loads every message it holds.
    pub fn open(
        root: impl Into<std::path::PathBuf>,
        settings: QueueSettings,
        metrics: Arc<RelayMetrics>,
    ) -> io::Result<Self> {
        let spool = Spool::open(root)?;
        let mut state = State::default();
        let now = Instant::now();
        for recovered in spool.recover()? {
            let id = recovered.envelope.id.clone();
            state.messages.insert(
                id,
                Entry {
                    envelope: Arc::new(recovered.envelope),
                    outcomes: recovered.outcomes,
                    size: recovered.size,
                    fresh: None,
                    next_attempt: now,
                    attempts: 0,
                    in_flight: false,
                    last_error: None,
                },
            );
        }
        metrics.queue_length.store(state.messages.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let inner = Inner { spool, settings, metrics, state: Mutex::new(state), wake: Notify::new() };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Stores a message durably and schedules it. `Ok` means it is on disk.
    pub async fn submit(&self, envelope: Envelope, message: Vec<u8>) -> io::Result<()> {
        let spool = self.inner.spool.clone();
        let message = Arc::new(message);
        let (envelope, message) =
            tokio::task::spawn_blocking(move || spool.store(&envelope, &message).map(|()| (envelope, message)))
                .await
                .map_err(io::Error::other)??;
        let mut state = self.lock();
        // Bodies wait in memory for their first attempt only up to a bound; past it
        // they are read back from the spool (a backlog must not grow the heap).
        let keep = state.fresh_bytes + message.len() <= FRESH_LIMIT;
        if keep {
            state.fresh_bytes += message.len();
        }
        let entry = Entry {
            outcomes: vec![None; envelope.recipients.len()],
            envelope: Arc::new(envelope),
            size: message.len() as u64,
            fresh: keep.then_some(message),
            next_attempt: Instant::now(),
            attempts: 0,
            in_flight: false,
            last_error: None,
        };
        state.messages.insert(entry.envelope.id.clone(), entry);
        self.set_length(&state);
        drop(state);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// The spool, for reading bodies.
    pub fn spool(&self) -> &Spool {
        &self.inner.spool
    }

    /// Queue settings.
    pub fn settings(&self) -> &QueueSettings {
        &self.inner.settings
    }

    /// Counters.
    pub fn metrics(&self) -> &Arc<RelayMetrics> {
        &self.inner.metrics
    }

    /// Messages in the queue.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every queued message, oldest first.
    pub fn list(&self) -> Vec<QueuedMessage> {
        let state = self.lock();
        let now = Instant::now();
        let mut list: Vec<QueuedMessage> = state
            .messages
            .values()
            .map(|entry| QueuedMessage {
                id: entry.envelope.id.clone(),
                sender: entry.envelope.sender.as_ref().map(ToString::to_string).unwrap_or_default(),
                pending: entry
                    .envelope
                    .recipients
                    .iter()
                    .zip(&entry.outcomes)
                    .filter(|(_, outcome)| outcome.is_none())
                    .map(|(r, _)| r.to_string())
                    .collect(),
                size: entry.size,
                arrival: entry.envelope.arrival,
                attempts: entry.attempts,
                next_attempt_in: entry.next_attempt.saturating_duration_since(now),
                last_error: entry.last_error.clone(),
            })
            .collect();
        list.sort_by_key(|m| m.arrival);
        list
    }

    /// Makes a message due now and clears the destinations' backoff (an operator
    /// retrying has usually just fixed the next hop).
    pub fn retry(&self, id: &str) -> bool {
        let mut state = self.lock();
        let Some(entry) = state.messages.get_mut(id) else { return false };
        entry.next_attempt = Instant::now();
        state.destinations.clear();
        drop(state);
        self.inner.wake.notify_one();
        true
    }

    /// Deletes a message without delivering it or telling its sender (an
    /// operator's decision, as Exchange's Remove-Message without NDR).
    pub fn remove(&self, id: &str) -> io::Result<bool> {
        let mut state = self.lock();
        match state.messages.get(id) {
            None => return Ok(false),
            Some(entry) if entry.in_flight => {
                return Err(io::Error::other("the message is being delivered right now; try again in a moment"));
            }
            Some(_) => {}
        }
        if let Some(fresh) = state.messages.remove(id).and_then(|entry| entry.fresh) {
            state.fresh_bytes = state.fresh_bytes.saturating_sub(fresh.len());
        }
        self.set_length(&state);
        drop(state);
        self.inner.spool.remove(id)?;
        Ok(true)
    }

    /// Runs the scheduler until `shutdown`: each due message is handed to
    /// `delivery` (at most `max_deliveries` at once) in a task of `tasks`, so a stop
    /// can let deliveries in flight finish and record their outcome.
    pub async fn run(self, delivery: Arc<delivery::Delivery>, tasks: TaskTracker, shutdown: CancellationToken) {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.inner.settings.max_deliveries.max(1)));
        loop {
            let capacity = slots.available_permits();
            let (due, next_wake) = self.take_due(capacity);
            for message in due {
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                let span = info_span!("delivery", queue_id = %message.envelope.id);
                let (queue, delivery) = (self.clone(), delivery.clone());
                tasks.spawn(
                    async move {
                        let id = message.envelope.id.clone();
                        let report = delivery.deliver(&queue, message).await;
                        queue.finish(&id, report).await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            // With every slot busy, a finishing delivery wakes us (finish notifies);
            // otherwise sleep until the earliest future attempt.
            let sleep = match next_wake {
                Some(at) if capacity > 0 => at.saturating_duration_since(Instant::now()),
                _ => Duration::from_secs(60),
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Destination backoff: true when `destination` may be tried now.
    pub fn destination_ready(&self, destination: &str) -> bool {
        self.lock().destinations.get(destination).is_none_or(|(_, at)| *at <= Instant::now())
    }

    /// Records a destination's success (clears its backoff) or failure (doubles it).
    pub fn destination_result(&self, destination: &str, ok: bool) {
        let mut state = self.lock();
        if ok {
            state.destinations.remove(destination);
            return;
        }
        let failures = state.destinations.get(destination).map_or(0, |(f, _)| *f);
        let delay = backoff(&self.inner.settings, failures);
        state.destinations.insert(destination.to_owned(), (failures + 1, Instant::now() + delay));
    }

    fn take_due(&self, capacity: usize) -> (Vec<Due>, Option<Instant>) {
        let mut state = self.lock();
        let now = Instant::now();
        let mut due = Vec::new();
        let mut next_wake: Option<Instant> = None;
        let mut fresh_bytes = 0usize;
        for entry in state.messages.values_mut() {
            if entry.in_flight {
                continue;
            }
            if entry.next_attempt > now {
                next_wake = Some(next_wake.map_or(entry.next_attempt, |at| at.min(entry.next_attempt)));
                continue;
            }
            if due.len() >= capacity {
                continue;
            }
            entry.in_flight = true;
            due.push(Due {
                envelope: entry.envelope.clone(),
                pending: entry.outcomes.iter().enumerate().filter(|(_, o)| o.is_none()).map(|(i, _)| i).collect(),
                fresh: entry.fresh.take().inspect(|body| fresh_bytes += body.len()),
                attempts: entry.attempts,
            });
        }
        state.fresh_bytes = state.fresh_bytes.saturating_sub(fresh_bytes);
        (due, next_wake)
    }

    /// Takes a delivery's outcomes: records them durably, removes a finished
    /// message (or moves it to `corrupt/` when its body could not be read), or
    /// schedules the next attempt.
    async fn finish(&self, id: &str, report: delivery::Report) {
        let corrupt = report.corrupt;
        let (finished, newly_final) = {
            let mut state = self.lock();
            let Some(entry) = state.messages.get_mut(id) else { return };
            entry.attempts += 1;
            let mut newly_final = Vec::new();
            for (index, outcome) in report.outcomes {
                if let Some(slot) = entry.outcomes.get_mut(index)
                    && slot.is_none()
                {
                    *slot = Some(outcome.clone());
                    newly_final.push((index, outcome));
                }
            }
            entry.last_error = report.last_error.or(entry.last_error.take());
            let finished = entry.outcomes.iter().all(Option::is_some);
            if finished {
                // Out of the index before its file goes: the scheduler must never
                // pick a finished message again (that would deliver it twice).
                state.messages.remove(id);
                self.set_length(&state);
            } else {
                entry.in_flight = false;
                entry.next_attempt = Instant::now() + backoff(&self.inner.settings, entry.attempts - 1);
            }
            (finished, newly_final)
        };
        let spool = self.inner.spool.clone();
        let id_owned = id.to_owned();
        let metrics = self.inner.metrics.clone();
        let result = tokio::task::spawn_blocking(move || {
            if finished && corrupt {
                match spool.quarantine(&id_owned) {
                    Ok(()) => {
                        metrics.add(&metrics.messages_corrupt, 1);
                        Ok(())
                    }
                    Err(error) => {
                        // Recorded instead, so a restart does not tell the sender twice.
                        error!(queue_id = %id_owned, %error, "cannot move the unreadable message to corrupt/");
                        spool.record(&id_owned, &newly_final)
                    }
                }
            } else if finished {
                // If the file cannot go, its outcomes are recorded, so a restart does
                // not deliver it again.
                spool.remove(&id_owned).or_else(|_| spool.record(&id_owned, &newly_final))
            } else if newly_final.is_empty() {
                Ok(())
            } else {
                spool.record(&id_owned, &newly_final)
            }
        })
        .await;
        if let Ok(Err(error)) | Err(error) = result.map_err(io::Error::other) {
            warn!(queue_id = %id, %error, "cannot update the spool; the message may be retried after a restart");
        }
        self.inner.wake.notify_one();
    }

    fn set_length(&self, state: &State) {
        self.inner.metrics.queue_length.store(state.messages.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Most body bytes kept in memory for first attempts.
const FRESH_LIMIT: usize = 64 * 1024 * 1024;

/// `retry_initial × 2^failures`, at most `retry_max`.
fn backoff(settings: &QueueSettings, failures: u32) -> Duration {
    settings.retry_initial.saturating_mul(2u32.saturating_pow(failures.min(20))).min(settings.retry_max)
}
