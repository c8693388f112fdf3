-- What the organization publishes for others to secure mail to it (issue #15).
--
-- published_tlsa: the TLSA "3 1 1" records `dsctl publish tlsa` printed, per edge,
-- owner name and key hash, with when each was last printed: the records the
-- controller knows of, against which `dsctl cert enable` checks a certificate's key.
CREATE TABLE published_tlsa (
    edge_id         UUID NOT NULL REFERENCES edges (id) ON DELETE CASCADE,
    owner           TEXT NOT NULL,
    spki_sha256     TEXT NOT NULL CHECK (spki_sha256 ~ '^[0-9a-f]{64}$'),
    printed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (edge_id, owner, spki_sha256)
);

-- The MTA-STS policy the controller serves on --mta-sts-listen (one per
-- organization: every accepted domain's mta-sts host serves the same file).
CREATE TABLE mta_sts_policy (
    id              SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    mode            TEXT NOT NULL CHECK (mode IN ('enforce', 'testing', 'none')),
    max_age_seconds BIGINT NOT NULL CHECK (max_age_seconds BETWEEN 0 AND 31557600),
    -- RFC 8461 section 3.1: 1 to 32 alphanumerics; a new one whenever policy_text changes.
    policy_id       TEXT NOT NULL CHECK (policy_id ~ '^[A-Za-z0-9]{1,32}$'),
    policy_text     TEXT NOT NULL,
    published_by    TEXT NOT NULL,
    published_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
