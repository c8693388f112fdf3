-- dsctl partner report: what each edge saw of each partner (a secure-list entry).
-- partner_observations keeps, per edge, partner and hour, the edge's cumulative
-- figures at its last heartbeat in that hour: a report for a period is the newest
-- row minus the newest row before the period (an edge whose figures went down was
-- reset, and counts from zero). Rows older than the retention are deleted as new
-- ones arrive.
CREATE TABLE partner_observations (
    edge_id             UUID NOT NULL REFERENCES edges(id) ON DELETE CASCADE,
    partner             TEXT NOT NULL,
    hour                TIMESTAMPTZ NOT NULL,
    received            BIGINT NOT NULL,
    sent                BIGINT NOT NULL,
    outbound_failures   BIGINT NOT NULL,
    inbound_refusals    BIGINT NOT NULL,
    outbound_sessions   BIGINT NOT NULL,
    reasons             JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (edge_id, partner, hour)
);

-- The certificates partners presented, per edge, with when each was last seen.
CREATE TABLE partner_certificates (
    edge_id     UUID NOT NULL REFERENCES edges(id) ON DELETE CASCADE,
    partner     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    not_after   TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (edge_id, partner, sha256)
);
