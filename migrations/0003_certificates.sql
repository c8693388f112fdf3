-- Certificate management: tasks the controller hands to an edge, and the
-- directory's mirror of each edge's certificate store (public parts only).

CREATE TABLE certificate_tasks (
    id              UUID PRIMARY KEY,
    edge_id         UUID NOT NULL REFERENCES edges (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    -- The task as sent (protobuf, base64 in JSON); never holds a private key.
    params          JSONB NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
    request_pem     TEXT,
    thumbprint      TEXT,
    error           TEXT,
    -- For verify: the steps and the verdict.
    steps           TEXT[] NOT NULL DEFAULT '{}',
    verified        BOOLEAN,
    requested_by    TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ
);
CREATE INDEX certificate_tasks_queued ON certificate_tasks (edge_id) WHERE state = 'queued';

CREATE TABLE edge_certificates (
    edge_id         UUID NOT NULL REFERENCES edges (id) ON DELETE CASCADE,
    thumbprint      TEXT NOT NULL,
    position        INT NOT NULL,
    sha256          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    issuer          TEXT NOT NULL,
    serial          TEXT NOT NULL,
    dns_names       TEXT[] NOT NULL,
    not_before      TEXT NOT NULL,
    not_after       TEXT NOT NULL,
    services        TEXT[] NOT NULL,
    key_status      TEXT NOT NULL,
    friendly_name   TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    PRIMARY KEY (edge_id, thumbprint)
);

-- The paper's "direct root trust" for private root CAs, and cross-certificates:
-- pushed to edges with the snapshot. NULL edges means every edge.
CREATE TABLE trusted_roots (
    sha256          TEXT PRIMARY KEY,
    subject         TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    edges           TEXT[],
    added_by        TEXT NOT NULL,
    added_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
