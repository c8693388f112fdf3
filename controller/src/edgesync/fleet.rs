//! The edges connected to this controller replica, so a removal or a forced
//! sync reaches their streams.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Handles of the streams this replica holds, by edge name.
#[derive(Default)]
pub struct Fleet {
    streams: Mutex<HashMap<String, StreamHandle>>,
    next_id: AtomicU64,
}

/// One edge's stream: cancel it, or ask it to resend its snapshot.
#[derive(Clone)]
pub struct StreamHandle {
    id: u64,
    /// Cancelled when the edge is removed or replaced by a newer stream.
    pub cancel: CancellationToken,
    /// Notified to push the current snapshot again.
    pub resync: Arc<Notify>,
    /// Notified when certificate tasks are queued for the edge.
    pub tasks: Arc<Notify>,
}

impl Fleet {
    /// Registers a new stream for `edge`, closing an older one of the same edge.
    pub fn register(&self, edge: &str) -> StreamHandle {
        let handle = StreamHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            cancel: CancellationToken::new(),
            resync: Arc::new(Notify::new()),
            tasks: Arc::new(Notify::new()),
        };
        if let Ok(mut streams) = self.streams.lock()
            && let Some(old) = streams.insert(edge.to_owned(), handle.clone())
        {
            old.cancel.cancel();
        }
        handle
    }

    /// Streams held now.
    pub fn len(&self) -> usize {
        self.streams.lock().map_or(0, |streams| streams.len())
    }

    /// True when this replica holds no stream.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets a stream that ended (unless a newer one replaced it).
    pub fn unregister(&self, edge: &str, handle: &StreamHandle) {
        if let Ok(mut streams) = self.streams.lock()
            && streams.get(edge).is_some_and(|current| current.id == handle.id)
        {
            streams.remove(edge);
        }
    }

    /// Closes the streams of edges for which `keep` is false.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut streams) = self.streams.lock() {
            streams.retain(|edge, handle| {
                let kept = keep(edge);
                if !kept {
                    handle.cancel.cancel();
                }
                kept
            });
        }
    }

    /// Asks the named edges' streams (or all, for `None`) to push again.
    pub fn resync(&self, edges: Option<&[String]>) {
        if let Ok(streams) = self.streams.lock() {
            for (edge, handle) in streams.iter() {
                if edges.is_none_or(|names| names.iter().any(|n| n == edge)) {
                    handle.resync.notify_one();
                }
            }
        }
    }

    /// Tells the edge's stream, if held here, that tasks are waiting.
    pub fn notify_tasks(&self, edge: &str) {
        if let Ok(streams) = self.streams.lock()
            && let Some(handle) = streams.get(edge)
        {
            handle.tasks.notify_one();
        }
    }

    /// True when this replica holds a stream of `edge`.
    pub fn holds(&self, edge: &str) -> bool {
        self.streams.lock().is_ok_and(|streams| streams.contains_key(edge))
    }
}
