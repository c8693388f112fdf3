-- Configuration history (issue #13): each config version's whole declarative
-- configuration document, written by the change that produced the version in the
-- same transaction (controller/src/db/change.rs), so `dsctl config export --version N`
-- and `dsctl config rollback --to-version N` read it back as it was. Versions made
-- before this table existed have no row. See docs/decisions/0007-configuration-history.md.
CREATE TABLE config_versions (
    version         BIGINT PRIMARY KEY CHECK (version > 0),
    -- The document as `dsctl config export -o json` prints it (schema domainsec.config/v1).
    document        JSONB NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
