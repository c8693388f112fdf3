//! Writes edges' sync state to the directory in batches, off the stream's path.

use std::{collections::HashMap, time::Duration};

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::sync_state::{self, SyncState};

/// Hands state updates to the writer task; the newest per edge wins.
#[derive(Clone)]
pub struct StatusWriter {
    sender: mpsc::UnboundedSender<SyncState>,
}

impl StatusWriter {
    /// Starts the writer; it flushes every 200 ms and once more at shutdown.
    pub fn start(pool: PgPool, shutdown: CancellationToken) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, receiver, shutdown));
        Self { sender }
    }

    /// Queues the edge's current state.
    pub fn update(&self, state: &SyncState) {
        let _ = self.sender.send(state.clone());
    }
}

async fn run(pool: PgPool, mut receiver: mpsc::UnboundedReceiver<SyncState>, shutdown: CancellationToken) {
    let mut pending: HashMap<Uuid, SyncState> = HashMap::new();
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    loop {
        tokio::select! {
            received = receiver.recv() => match received {
                Some(state) => { pending.insert(state.edge_id, state); }
                None => break,
            },
            _ = tick.tick() => flush(&pool, &mut pending).await,
            () = shutdown.cancelled() => break,
        }
    }
    while let Ok(state) = receiver.try_recv() {
        pending.insert(state.edge_id, state);
    }
    flush(&pool, &mut pending).await;
}

async fn flush(pool: &PgPool, pending: &mut HashMap<Uuid, SyncState>) {
    if pending.is_empty() {
        return;
    }
    let batch: Vec<SyncState> = pending.drain().map(|(_, state)| state).collect();
    for chunk in batch.chunks(BATCH) {
        if let Err(error) = sync_state::store_all(pool, chunk).await {
            tracing::warn!(%error, edges = chunk.len(), "could not record edge sync state");
        }
    }
}

const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
const BATCH: usize = 2000;
