//! The edge's local settings (`domainsec-edge run --config edge.toml`): what the
//! directory does not hold because it belongs to this host — DNS, spool timing,
//! session limits, log rotation. Every field has a default, so no file is needed.

use std::{path::Path, time::Duration};

use serde::Deserialize;

use crate::{protocol_log::LogSettings, routing::dns::DnsSettings};

/// `edge.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeSettings {
    /// Inbound session limits.
    pub limits: SessionLimits,
    /// Queue and delivery.
    pub queue: QueueSettings,
    /// Next-hop lookup.
    pub dns: DnsSettings,
    /// Protocol log rotation.
    pub protocol_log: LogSettings,
    /// How partner certificates are judged.
    pub domain_security: DomainSecuritySettings,
    /// `[mta_sts]`: MTA-STS policy fetches.
    pub mta_sts: MtaStsSettings,
    /// How a stop drains the relay.
    pub shutdown: ShutdownSettings,
}

/// What `SIGTERM` does (`[shutdown]`): stop accepting, answer idle sessions
/// `421 4.3.2`, let transactions in DATA or BDAT and deliveries in flight finish,
/// then exit. A second signal, or the deadline, ends the wait at once; the spool
/// is safe either way.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSettings {
    /// The longest a stop waits for sessions and deliveries to finish (0: not at all).
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self { drain_timeout: Duration::from_secs(30) }
    }
}

/// How this edge judges partners' certificates (Domain Security).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainSecuritySettings {
    /// Trust the platform's built-in roots (webpki-roots) besides the organization's trusted roots.
    pub platform_roots: bool,
    /// Accept a partner's client certificate that allows only server authentication, provided
    /// its name matches (public CAs stopped issuing the client-auth EKU in 2026).
    pub accept_server_auth_client_certificates: bool,
    /// Answer inbound Domain Security refusals with 4xx instead of 5xx, so a misconfigured
    /// partner's mail waits in its queue rather than bouncing (a transient revocation failure
    /// is always 4xx).
    pub temporary_refusals: bool,
    /// Timeout for fetching one CRL.
    #[serde(with = "humantime_serde")]
    pub crl_fetch_timeout: Duration,
}

/// MTA-STS (RFC 8461) on this edge: how policies are fetched and which roots the
/// WebPKI checks trust.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtaStsSettings {
    /// A PEM file of CA certificates trusted beside Mozilla's roots (webpki-roots) for
    /// policy servers and MX hosts under a policy: a private PKI, or a test lab.
    pub extra_roots: Option<std::path::PathBuf>,
    /// The whole fetch of one policy (connect, TLS, HTTP), RFC 8461 §3.3.
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
}

impl Default for MtaStsSettings {
    fn default() -> Self {
        Self { extra_roots: None, fetch_timeout: Duration::from_secs(10) }
    }
}

/// Limits of inbound SMTP sessions (RFC 5321 §4.5.3 and Exchange's defaults).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionLimits {
    /// Recipients per message (`452 4.5.3` beyond).
    pub max_recipients: usize,
    /// Longest text line in DATA, CRLF included (RFC 5321: 1000).
    pub max_line_length: usize,
    /// Longest wait for the client's next bytes.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Longest session.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Longest TLS handshake.
    #[serde(with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,
    /// Concurrent sessions per receive connector.
    pub max_sessions_per_connector: usize,
    /// Concurrent sessions per remote IP address.
    pub max_sessions_per_ip: usize,
    /// Refused commands before the session is closed.
    pub max_errors: u32,
    /// Memory all sessions together may hold for message bodies being received;
    /// beyond it a message gets `452 4.3.1` (try again later).
    pub max_receiving_memory: usize,
}

/// Queue and delivery timing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    /// A message not delivered within this time is returned to its sender.
    #[serde(with = "humantime_serde")]
    pub message_expiry: Duration,
    /// First retry delay after a temporary failure; doubles per failure.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Deliveries in flight at once.
    pub max_deliveries: usize,
    /// Connections to one destination at once.
    pub max_connections_per_destination: usize,
    /// How long an idle outbound connection is kept for the next message.
    #[serde(with = "humantime_serde")]
    pub connection_idle: Duration,
    /// Timeout for connecting and for each reply of the next hop.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Timeout for the reply after the message data (RFC 5321 §4.5.3.2.6: 10 minutes).
    #[serde(with = "humantime_serde")]
    pub data_timeout: Duration,
}

/// Why `edge.toml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// The TOML is wrong; the text names the key.
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl EdgeSettings {
    /// Loads `path`, or the defaults when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, SettingsError> {
        let Some(path) = path else { return Ok(Self::default()) };
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| SettingsError::Read { path: shown.clone(), source })?;
        toml::from_str(&text).map_err(|e| SettingsError::Parse { path: shown, message: e.to_string() })
    }
}

impl Default for DomainSecuritySettings {
    fn default() -> Self {
        Self {
            platform_roots: true,
            accept_server_auth_client_certificates: true,
            temporary_refusals: false,
            crl_fetch_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_recipients: 200,
            max_line_length: 1000,
            idle_timeout: Duration::from_secs(300),
            session_timeout: Duration::from_secs(600),
            tls_handshake_timeout: Duration::from_secs(30),
            max_sessions_per_connector: 5000,
            max_sessions_per_ip: 20,
            max_errors: 10,
            max_receiving_memory: 512 * 1024 * 1024,
        }
    }
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            message_expiry: Duration::from_secs(2 * 24 * 3600),
            retry_initial: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            max_deliveries: 100,
            max_connections_per_destination: 20,
            connection_idle: Duration::from_secs(5),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/edge.example.toml");
        let example = EdgeSettings::load(Some(&path)).unwrap();
        let defaults = EdgeSettings::default();
        assert_eq!(format!("{:?}", example.limits), format!("{:?}", defaults.limits));
        assert_eq!(format!("{:?}", example.queue), format!("{:?}", defaults.queue));
        assert_eq!(format!("{:?}", example.protocol_log), format!("{:?}", defaults.protocol_log));
        assert_eq!(example.dns.smtp_port, 25);
        assert_eq!(format!("{:?}", example.domain_security), format!("{:?}", defaults.domain_security));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, "[queue]\nretry_intial = \"1m\"\n").unwrap();
        let error = EdgeSettings::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("retry_intial"), "{error}");
    }
}
