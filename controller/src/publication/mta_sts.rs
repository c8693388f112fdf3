//! The MTA-STS policy (RFC 8461): the mode, `max_age`, the MX hosts, the policy
//! file as served, its id and the `_mta-sts` TXT record.

use std::fmt;

use chrono::{DateTime, Utc};
use domainsec_model::{Domain, InvalidField};

/// What a sending MTA does when it cannot deliver to an MX host the policy names
/// over TLS with a certificate valid for that host (RFC 8461 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refuse to deliver otherwise.
    Enforce,
    /// Deliver anyway, and report (TLS-RPT).
    Testing,
    /// No policy: senders drop what they cached.
    None,
}

/// The policy's lifetime in senders' caches, in seconds: 0 to 31557600 (one year).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge(u64);

/// A policy before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `mode`.
    pub mode: Mode,
    /// `max_age`.
    pub max_age: MaxAge,
    /// `mx`: one line per host, in this order.
    pub mx: Vec<Domain>,
}

// === impl Mode ===

impl Mode {
    /// Parses `enforce`, `testing` or `none`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidField> {
        match value {
            "enforce" => Ok(Self::Enforce),
            "testing" => Ok(Self::Testing),
            "none" => Ok(Self::None),
            _ => Err(InvalidField::new(field, value, "must be enforce, testing or none (RFC 8461 section 5)")),
        }
    }

    /// The word in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Testing => "testing",
            Self::None => "none",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl MaxAge ===

impl MaxAge {
    /// One week, when the operator does not say.
    pub const DEFAULT: Self = Self(604_800);
    /// RFC 8461 section 3.2: at most 31557600 seconds (about a year).
    pub const MAX_SECONDS: u64 = 31_557_600;

    /// A lifetime from a request; `None` means [`MaxAge::DEFAULT`].
    pub fn parse(field: &str, seconds: Option<u64>) -> Result<Self, InvalidField> {
        match seconds {
            None => Ok(Self::DEFAULT),
            Some(seconds) if seconds > Self::MAX_SECONDS => Err(InvalidField::new(
                field,
                seconds.to_string(),
                format!("at most {} seconds (RFC 8461 section 3.2)", Self::MAX_SECONDS),
            )),
            Some(seconds) => Ok(Self(seconds)),
        }
    }

    /// Seconds.
    pub fn seconds(self) -> u64 {
        self.0
    }
}

// === impl Policy ===

impl Policy {
    /// A policy; `enforce` and `testing` need at least one MX host.
    pub fn new(mode: Mode, max_age: MaxAge, mx: Vec<Domain>) -> Result<Self, InvalidField> {
        if mx.is_empty() && mode != Mode::None {
            return Err(InvalidField::new(
                "mode",
                mode.as_str(),
                "no edge has a receive connector open to the internet, so the policy would name no MX host; \
                 add one (dsctl receive-connector new) or publish mode none",
            ));
        }
        Ok(Self { mode, max_age, mx })
    }

    /// The policy file (RFC 8461 section 3.2), CRLF line endings.
    pub fn text(&self) -> String {
        let mut text = format!("version: STSv1\r\nmode: {}\r\n", self.mode);
        for host in &self.mx {
            text.push_str(&format!("mx: {host}\r\n"));
        }
        text.push_str(&format!("max_age: {}\r\n", self.max_age.seconds()));
        text
    }
}

/// A new policy id for `text` published at `now`: the UTC time to the second and 8
/// hex digits of the text's SHA-256, 22 alphanumerics (RFC 8461 section 3.1 allows
/// 1 to 32). Two different texts published in the same second still differ.
pub fn new_id(text: &str, now: DateTime<Utc>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let hash: String = digest.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}{hash}", now.format("%Y%m%d%H%M%S"))
}

/// The `_mta-sts` owner name of a domain.
pub fn owner(domain: &Domain) -> String {
    format!("_mta-sts.{}.", domain.as_str())
}

/// `_mta-sts.contoso.com. IN TXT "v=STSv1; id=<id>"`.
pub fn txt_line(domain: &Domain, id: &str) -> String {
    format!("{} IN TXT {}", owner(domain), super::txt_strings(&format!("v=STSv1; id={id}")))
}

/// Where senders fetch the policy for `domain` (RFC 8461 section 3.3).
pub fn policy_url(domain: &Domain) -> String {
    format!("https://mta-sts.{}/.well-known/mta-sts.txt", domain.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<Domain> {
        names.iter().map(|n| Domain::parse(n).unwrap()).collect()
    }

    #[test]
    fn the_policy_file_follows_rfc_8461_with_crlf() {
        let policy = Policy::new(Mode::Enforce, MaxAge::DEFAULT, hosts(&["mail1.contoso.com", "mail2.contoso.com"]));
        assert_eq!(
            policy.unwrap().text(),
            "version: STSv1\r\nmode: enforce\r\nmx: mail1.contoso.com\r\nmx: mail2.contoso.com\r\nmax_age: 604800\r\n"
        );
        let none = Policy::new(Mode::None, MaxAge::parse("max_age_seconds", Some(0)).unwrap(), vec![]).unwrap();
        assert_eq!(none.text(), "version: STSv1\r\nmode: none\r\nmax_age: 0\r\n");
    }

    #[test]
    fn refusals_name_the_field() {
        assert_eq!(
            Mode::parse("mode", "strict").unwrap_err().to_string(),
            "mode \"strict\": must be enforce, testing or none (RFC 8461 section 5)"
        );
        assert_eq!(
            MaxAge::parse("max_age_seconds", Some(31_557_601)).unwrap_err().to_string(),
            "max_age_seconds \"31557601\": at most 31557600 seconds (RFC 8461 section 3.2)"
        );
        assert_eq!(MaxAge::parse("max_age_seconds", Some(31_557_600)).unwrap().seconds(), 31_557_600);
        assert_eq!(Policy::new(Mode::Testing, MaxAge::DEFAULT, vec![]).unwrap_err().field, "mode");
    }

    #[test]
    fn ids_are_short_alphanumerics_that_change_with_the_text() {
        let now = DateTime::parse_from_rfc3339("2026-05-01T10:20:30Z").unwrap().with_timezone(&Utc);
        let id = new_id("version: STSv1\r\n", now);
        assert!(id.starts_with("20260501102030") && id.len() == 22, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, new_id("version: STSv1\r\nmode: none\r\n", now));
        let domain = Domain::parse("contoso.com").unwrap();
        assert_eq!(txt_line(&domain, &id), format!("_mta-sts.contoso.com. IN TXT \"v=STSv1; id={id}\""));
    }
}
