//! Enumeration words on the command line, mapped to the API's enums.

use clap::ValueEnum;
use proto::admin as pb;

/// `--key-algorithm`: the key an edge makes for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default).
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    #[value(name = "ecdsa-p384")]
    EcdsaP384,
    /// RSA, 2048-bit modulus.
    #[value(name = "rsa2048", alias = "rsa-2048")]
    Rsa2048,
    /// RSA, 3072-bit modulus.
    #[value(name = "rsa3072", alias = "rsa-3072")]
    Rsa3072,
}

impl KeyAlgorithm {
    /// The word the API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
        }
    }
}

/// `--services` / `--enable`: what a certificate is enabled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    /// The edge's SMTP service: STARTTLS and Domain Security's mutual TLS.
    Smtp,
}

impl Service {
    /// The words the API takes.
    pub fn words(services: &[Self]) -> Vec<String> {
        services
            .iter()
            .map(|service| match service {
                Self::Smtp => "smtp".to_owned(),
            })
            .collect()
    }
}

/// `--dane` / `--mta-sts`: a policy source on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Honour it (the default for new connectors).
    Enabled,
    /// Ignore it.
    Disabled,
}

impl Switch {
    /// Whether it is on.
    pub fn is_on(self) -> bool {
        self == Self::Enabled
    }

    /// `enabled` or `disabled`.
    pub fn word(on: bool) -> &'static str {
        if on { "enabled" } else { "disabled" }
    }
}

/// `--protocol-logging-level`.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "kebab-case")]
pub enum LoggingLevel {
    /// No protocol log.
    None,
    /// Every SMTP line and TLS detail.
    Verbose,
}

/// `--auth-mechanism`.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "kebab-case")]
pub enum AuthMechanism {
    /// No authentication and no STARTTLS.
    None,
    /// STARTTLS; client certificates for Domain Security.
    Tls,
    /// SMTP AUTH with a password.
    #[value(alias = "basicauth")]
    BasicAuth,
    /// SMTP AUTH only after STARTTLS.
    #[value(alias = "basicauthrequiretls")]
    BasicAuthRequireTls,
    /// Trusted by an external control such as IPsec.
    #[value(alias = "externalauthoritative")]
    ExternalAuthoritative,
}

/// `--permission-groups`.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "kebab-case")]
pub enum PermissionGroup {
    /// Any sender, for accepted domains only.
    #[value(alias = "anonymoususers")]
    AnonymousUsers,
    /// Domain-secured partners.
    Partners,
    /// Authenticated users of the organization.
    #[value(alias = "exchangeusers")]
    ExchangeUsers,
    /// The organization's own servers (may relay anywhere).
    #[value(alias = "exchangeservers")]
    ExchangeServers,
}

impl From<LoggingLevel> for pb::ProtocolLoggingLevel {
    fn from(value: LoggingLevel) -> Self {
        match value {
            LoggingLevel::None => Self::None,
            LoggingLevel::Verbose => Self::Verbose,
        }
    }
}

impl From<AuthMechanism> for pb::AuthMechanism {
    fn from(value: AuthMechanism) -> Self {
        match value {
            AuthMechanism::None => Self::None,
            AuthMechanism::Tls => Self::Tls,
            AuthMechanism::BasicAuth => Self::BasicAuth,
            AuthMechanism::BasicAuthRequireTls => Self::BasicAuthRequireTls,
            AuthMechanism::ExternalAuthoritative => Self::ExternalAuthoritative,
        }
    }
}

impl From<PermissionGroup> for pb::PermissionGroup {
    fn from(value: PermissionGroup) -> Self {
        match value {
            PermissionGroup::AnonymousUsers => Self::AnonymousUsers,
            PermissionGroup::Partners => Self::Partners,
            PermissionGroup::ExchangeUsers => Self::ExchangeUsers,
            PermissionGroup::ExchangeServers => Self::ExchangeServers,
        }
    }
}

/// The word for a logging level from the API.
pub fn logging_level_word(value: i32) -> String {
    match pb::ProtocolLoggingLevel::try_from(value) {
        Ok(pb::ProtocolLoggingLevel::Verbose) => "verbose".to_owned(),
        Ok(_) => "none".to_owned(),
        Err(_) => format!("unknown({value})"),
    }
}

/// The word for an auth mechanism from the API.
pub fn auth_mechanism_word(value: i32) -> String {
    let word = match pb::AuthMechanism::try_from(value) {
        Ok(pb::AuthMechanism::None) => "none",
        Ok(pb::AuthMechanism::Tls) => "tls",
        Ok(pb::AuthMechanism::BasicAuth) => "basic-auth",
        Ok(pb::AuthMechanism::BasicAuthRequireTls) => "basic-auth-require-tls",
        Ok(pb::AuthMechanism::ExternalAuthoritative) => "external-authoritative",
        Ok(pb::AuthMechanism::Unspecified) | Err(_) => return format!("unknown({value})"),
    };
    word.to_owned()
}

/// The word for a permission group from the API.
pub fn permission_group_word(value: i32) -> String {
    let word = match pb::PermissionGroup::try_from(value) {
        Ok(pb::PermissionGroup::AnonymousUsers) => "anonymous-users",
        Ok(pb::PermissionGroup::Partners) => "partners",
        Ok(pb::PermissionGroup::ExchangeUsers) => "exchange-users",
        Ok(pb::PermissionGroup::ExchangeServers) => "exchange-servers",
        Ok(pb::PermissionGroup::Unspecified) | Err(_) => return format!("unknown({value})"),
    };
    word.to_owned()
}

/// The word for a role from the API.
pub fn role_word(value: i32) -> String {
    let word = match pb::Role::try_from(value) {
        Ok(pb::Role::OrgAdmin) => "org-admin",
        Ok(pb::Role::ServerAdmin) => "server-admin",
        Ok(pb::Role::ViewOnly) => "view-only",
        Ok(pb::Role::Unspecified) | Err(_) => return format!("unknown({value})"),
    };
    word.to_owned()
}

/// Parses `10MB`, `512KB`, `1GB` or a plain byte count (binary units, as Exchange).
pub fn parse_size(input: &str) -> Result<u64, String> {
    let text = input.trim().to_ascii_uppercase();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text.as_str(), ""),
    };
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "K" => 1024,
        "MB" | "M" => 1024 * 1024,
        "GB" | "G" => 1024 * 1024 * 1024,
        other => return Err(format!("unknown unit {other:?}; use B, KB, MB or GB (e.g. 10MB)")),
    };
    let value: u64 = number.parse().map_err(|_| format!("{input:?} is not a size; use e.g. 10MB or 10485760"))?;
    value.checked_mul(multiplier).ok_or_else(|| format!("{input:?} is too large"))
}

/// `--timeout` of a command the controller waits for: a duration up to
/// [`crate::client::MAX_WAIT`].
pub fn parse_wait(word: &str) -> Result<std::time::Duration, String> {
    let wait = humantime::parse_duration(word).map_err(|error| format!("{error} (e.g. 30s, 2m)"))?;
    if wait > crate::client::MAX_WAIT {
        return Err(format!(
            "at most {} (the controller's longest wait)",
            humantime::format_duration(crate::client::MAX_WAIT)
        ));
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("10MB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("512kb"), Ok(512 * 1024));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("10XB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("MB").is_err());
    }
}
