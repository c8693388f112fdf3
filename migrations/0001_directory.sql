-- The organization's directory: what Active Directory holds for Exchange in the paper.
-- Every change bumps organization.config_version and writes an audit_log row in the
-- same transaction (see controller/src/db/change.rs).

-- Exactly one organization per database (the CHECK pins the id).
CREATE TABLE organization (
    id              SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    name            TEXT NOT NULL,
    -- The internal CA that issues admin credentials and the controller's admin-API
    -- certificate. Only the public certificate is here; its key stays on the controller.
    ca_certificate_pem TEXT NOT NULL,
    config_version  BIGINT NOT NULL DEFAULT 1 CHECK (config_version > 0),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Certificates the controller presents: the admin API's now, the edge port's
-- direct-trust certificates with the EdgeSync issue.
CREATE TABLE controller_certificates (
    sha256          TEXT PRIMARY KEY,
    purpose         TEXT NOT NULL CHECK (purpose IN ('admin-api', 'edge-sync')),
    certificate_pem TEXT NOT NULL,
    not_after       TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Admin credentials issued by the internal CA. The role is also in the certificate;
-- this row lets a credential be looked up, scoped to edges and revoked.
CREATE TABLE admin_credentials (
    sha256          TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('org-admin', 'server-admin', 'view-only')),
    -- Edges a server-admin may manage.
    edges           TEXT[] NOT NULL DEFAULT '{}',
    serial          TEXT NOT NULL,
    not_after       TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at      TIMESTAMPTZ
);

CREATE TABLE accepted_domains (
    -- Lower-case A-labels; "*.contoso.com" covers the domain and its subdomains.
    domain          TEXT PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Singleton, like the organization.
CREATE TABLE transport_config (
    id              SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    tls_send_domain_secure_list    TEXT[] NOT NULL DEFAULT '{}',
    tls_receive_domain_secure_list TEXT[] NOT NULL DEFAULT '{}'
);

CREATE TABLE edges (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    -- Internet FQDN: default certificate CN and EHLO name.
    fqdn            TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE send_connectors (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    address_spaces  TEXT[] NOT NULL CHECK (cardinality(address_spaces) > 0),
    -- Empty: DNS (MX) routing.
    smart_hosts     TEXT[] NOT NULL DEFAULT '{}',
    fqdn            TEXT,
    domain_secure_enabled  BOOLEAN NOT NULL DEFAULT false,
    protocol_logging_level TEXT NOT NULL CHECK (protocol_logging_level IN ('none', 'verbose')),
    max_message_size BIGINT NOT NULL CHECK (max_message_size > 0),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (NOT (domain_secure_enabled AND cardinality(smart_hosts) > 0))
);

-- Removing an edge removes it from every connector's source list.
CREATE TABLE send_connector_source_edges (
    send_connector_id UUID NOT NULL REFERENCES send_connectors (id) ON DELETE CASCADE,
    edge_id         UUID NOT NULL REFERENCES edges (id) ON DELETE CASCADE,
    position        INT NOT NULL,
    PRIMARY KEY (send_connector_id, edge_id)
);
CREATE INDEX send_connector_source_edges_edge ON send_connector_source_edges (edge_id);

CREATE TABLE receive_connectors (
    id              UUID PRIMARY KEY,
    edge_id         UUID NOT NULL REFERENCES edges (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    bindings        TEXT[] NOT NULL CHECK (cardinality(bindings) > 0),
    remote_ip_ranges TEXT[] NOT NULL DEFAULT '{}',
    fqdn            TEXT,
    auth_mechanisms TEXT[] NOT NULL CHECK (cardinality(auth_mechanisms) > 0),
    domain_secure_enabled  BOOLEAN NOT NULL DEFAULT false,
    permission_groups TEXT[] NOT NULL CHECK (cardinality(permission_groups) > 0),
    protocol_logging_level TEXT NOT NULL CHECK (protocol_logging_level IN ('none', 'verbose')),
    max_message_size BIGINT NOT NULL CHECK (max_message_size > 0),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (edge_id, name)
);

CREATE TABLE audit_log (
    id              BIGSERIAL PRIMARY KEY,
    at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor           TEXT NOT NULL,
    actor_role      TEXT NOT NULL,
    action          TEXT NOT NULL,
    target          TEXT NOT NULL,
    config_version  BIGINT NOT NULL,
    before          JSONB,
    after           JSONB
);
