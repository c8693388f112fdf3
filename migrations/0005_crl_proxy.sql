-- Where edges fetch CRLs from: directly, or through an HTTP proxy with a bypass
-- list (the paper's `proxycfg -p proxy "<local>"`).
ALTER TABLE transport_config
    ADD COLUMN crl_proxy TEXT,
    ADD COLUMN crl_proxy_bypass TEXT[] NOT NULL DEFAULT '{}';
