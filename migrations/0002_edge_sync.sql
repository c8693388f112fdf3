-- Edge subscription and EdgeSync state.

-- An edge's direct-trust certificate, registered when it subscribes. Removing the
-- edge deletes the row, and with it the certificate: the edge is cut off.
ALTER TABLE edges
    ADD COLUMN certificate_sha256 TEXT UNIQUE,
    ADD COLUMN certificate_pem    TEXT,
    ADD COLUMN subscribed_at      TIMESTAMPTZ;

-- One outstanding subscription per edge; the secret is kept only as a hash.
CREATE TABLE edge_subscriptions (
    edge_id         UUID PRIMARY KEY REFERENCES edges (id) ON DELETE CASCADE,
    secret_sha256   TEXT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at         TIMESTAMPTZ
);

-- What the controllers know of each edge's sync: written by the controller replica
-- that holds the edge's stream, read by fleet status from any replica.
CREATE TABLE edge_sync_state (
    edge_id             UUID PRIMARY KEY REFERENCES edges (id) ON DELETE CASCADE,
    connected           BOOLEAN NOT NULL DEFAULT false,
    connected_since     TIMESTAMPTZ,
    controller          TEXT,
    last_seen_at        TIMESTAMPTZ,
    last_version_sent   BIGINT,
    last_version_acked  BIGINT,
    acked_at            TIMESTAMPTZ,
    last_nack_version   BIGINT,
    last_nack_reason    TEXT,
    nack_at             TIMESTAMPTZ,
    last_heartbeat_at   TIMESTAMPTZ,
    counters            JSONB NOT NULL DEFAULT '{}',
    queue_length        BIGINT,
    section_digests     JSONB NOT NULL DEFAULT '{}',
    agent_version       TEXT
);

-- A controller certificate staged for rotation: the config version that first
-- carried it to edges. It may be presented once every edge has ACKed that version.
ALTER TABLE controller_certificates ADD COLUMN staged_version BIGINT;
