-- DANE (RFC 7672) and MTA-STS (RFC 8461) per send connector, below Domain Security.
-- On by default: an edge honours what recipient domains publish unless told not to.
ALTER TABLE send_connectors
    ADD COLUMN dane_enabled boolean NOT NULL DEFAULT true,
    ADD COLUMN mta_sts_enabled boolean NOT NULL DEFAULT true;
