-- Controller replicas on one directory (issue #16).
--
-- controller_replicas: each replica's lease, renewed while it runs (in the database's
-- clock, so the replicas' clocks need not agree). A replica killed with SIGKILL, or on
-- a host that vanished, never writes its edges' disconnection: fleet status counts an
-- edge as connected only while the replica recorded as holding its stream holds a live
-- lease, so such rows turn "not connected" when the lease runs out.
CREATE TABLE controller_replicas (
    id              TEXT PRIMARY KEY,
    edge_endpoint   TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    renewed_at      TIMESTAMPTZ NOT NULL,
    live_until      TIMESTAMPTZ NOT NULL,
    streams         BIGINT NOT NULL DEFAULT 0
);

-- Each edge stream, on any replica, draws a number from one sequence when it opens;
-- a sync-state write carries its stream's number and is ignored when a newer stream
-- (on this or another replica) has written since. The late "disconnected" of a stream
-- an edge left for another replica cannot overwrite the row the new holder wrote.
CREATE SEQUENCE edge_stream_generation;
ALTER TABLE edge_sync_state ADD COLUMN stream_generation BIGINT;
