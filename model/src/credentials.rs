//! The admin credential bundle that `domainsec-controller` writes and `dsctl` reads.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Everything `dsctl` needs to reach and authenticate to a controller, kept in
/// one TOML file (mode 0600, since it holds a private key).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialBundle {
    /// Admin API addresses (`host:port`), tried in order.
    pub controllers: Vec<String>,
    /// Name the controller's certificate is checked against.
    pub server_name: String,
    /// The admin this credential belongs to.
    pub name: String,
    /// The role in the certificate, for display; the controller decides.
    pub role: String,
    /// PEM of the organization's internal CA, the only CA `dsctl` trusts.
    pub ca_certificate: String,
    /// PEM of the admin's client certificate.
    pub certificate: String,
    /// PEM (PKCS#8) of the admin's private key.
    pub private_key: String,
}

impl CredentialBundle {
    /// Name the controller's admin-API certificate always carries.
    pub const SERVER_NAME: &'static str = "domainsec-controller";
}

impl fmt::Debug for CredentialBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialBundle")
            .field("controllers", &self.controllers)
            .field("server_name", &self.server_name)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("private_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A one-time subscription file, written by `dsctl edge new-subscription` and read
/// by `domainsec-edge subscribe`. It holds a secret: mode 0600, use once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionFile {
    /// The organization's name.
    pub organization: String,
    /// The edge this file subscribes.
    pub edge: String,
    /// The edge's internet FQDN.
    pub fqdn: String,
    /// Controller edge-port addresses (`host:port`), tried in order.
    pub endpoints: Vec<String>,
    /// SHA-256 (hex) of the controllers' direct-trust certificates: the only
    /// certificates the edge accepts from a controller.
    pub controller_sha256: Vec<String>,
    /// The one-time secret.
    pub secret: String,
    /// When the secret expires (RFC 3339).
    pub expires_at: String,
}

impl fmt::Debug for SubscriptionFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionFile")
            .field("edge", &self.edge)
            .field("endpoints", &self.endpoints)
            .field("expires_at", &self.expires_at)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}
