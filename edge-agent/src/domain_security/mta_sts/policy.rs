//! The two texts of MTA-STS (RFC 8461 §3): the `_mta-sts` TXT record and the policy
//! file, parsed strictly enough that a malformed one is "no policy" and never a
//! weaker one, and leniently where the RFC allows (LF line ends, extension fields).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A policy's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Only MX hosts the policy lists, over verified TLS; else the message waits.
    Enforce,
    /// Deliver as before, and report what enforcing would have refused.
    Testing,
    /// The domain withdrew its policy.
    None,
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `mode:`.
    pub mode: Mode,
    /// `mx:` patterns, lower case, without trailing dots (`mail.example.com`, `*.example.net`).
    pub mx: Vec<String>,
    /// `max_age:` in seconds (at most a year, RFC 8461 §3.2).
    pub max_age: u64,
}

/// Why a TXT record or a policy file is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Zero or several `v=STSv1` TXT records (RFC 8461 §3.1: then there is no policy).
    #[error("{0} TXT records start with v=STSv1 (exactly one is needed)")]
    RecordCount(usize),
    /// The TXT record's fields do not parse.
    #[error("TXT record: {0}")]
    Record(String),
    /// The policy file does not parse or lacks a field.
    #[error("policy file: {0}")]
    File(String),
}

// === impl Mode ===

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Enforce => "enforce",
            Self::Testing => "testing",
            Self::None => "none",
        })
    }
}

// === impl Policy ===

impl Policy {
    /// Parses a policy file (RFC 8461 §3.2): `key: value` lines ending in CRLF or LF;
    /// `version: STSv1`, `mode` and `max_age` once each, `mx` at least once unless the
    /// mode is `none`; unknown keys ignored.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let error = |reason: String| PolicyError::File(reason);
        let (mut version, mut mode, mut max_age, mut mx) = (None, None, None, Vec::new());
        for line in text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line)) {
            if line.trim().is_empty() {
                continue;
            }
            let (key, value) = line.split_once(':').ok_or_else(|| error(format!("line {line:?} has no ':'")))?;
            let value = value.trim_matches(|c| c == ' ' || c == '\t');
            // ABNF's quoted strings (RFC 8461 §3.2, RFC 5234 §2.3) match in any case.
            match key.to_ascii_lowercase().as_str() {
                "version" => set_once(&mut version, value.to_ascii_lowercase(), key)?,
                "mode" => set_once(&mut mode, parse_mode(value)?, key)?,
                "max_age" => set_once(&mut max_age, parse_max_age(value)?, key)?,
                "mx" => mx.push(parse_mx_pattern(value)?),
                _ => {}
            }
            if mx.len() > MAX_MX_PATTERNS {
                return Err(error(format!("more than {MAX_MX_PATTERNS} mx patterns")));
            }
        }
        if version.as_deref() != Some("stsv1") {
            return Err(error("version must be STSv1".into()));
        }
        let mode = mode.ok_or_else(|| error("mode is missing".into()))?;
        let max_age = max_age.ok_or_else(|| error("max_age is missing".into()))?;
        if mx.is_empty() && mode != Mode::None {
            return Err(error(format!("mode {mode} needs at least one mx")));
        }
        Ok(Self { mode, mx, max_age })
    }

    /// Whether MX host `host` (lower-case A-labels, no trailing dot) matches a pattern:
    /// exactly, or `*.` standing for one leftmost label (RFC 8461 §4.1).
    pub fn allows_mx(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|pattern| match pattern.strip_prefix("*.") {
            Some(parent) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => *pattern == host,
        })
    }
}

/// The `id` of the domain's one `v=STSv1` TXT record (RFC 8461 §3.1). `records` are the
/// TXT records, each its strings joined.
pub fn record_id(records: &[String]) -> Result<String, PolicyError> {
    // RFC 8461 §3.1: records not starting with the version field are discarded.
    let sts: Vec<&String> = records
        .iter()
        .filter(|r| r.strip_prefix("v=STSv1").is_some_and(|rest| rest.is_empty() || rest.starts_with([';', ' ', '\t'])))
        .collect();
    let [record] = sts.as_slice() else { return Err(PolicyError::RecordCount(sts.len())) };
    let mut fields = record.split(';').map(|f| f.trim_matches(|c| c == ' ' || c == '\t'));
    if fields.next() != Some("v=STSv1") {
        return Err(PolicyError::Record("the first field must be v=STSv1".into()));
    }
    let mut id = None;
    for field in fields.filter(|f| !f.is_empty()) {
        let (name, value) = field.split_once('=').ok_or_else(|| PolicyError::Record(format!("field {field:?}")))?;
        if name == "id" {
            let valid = (1..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric());
            if !valid || id.is_some() {
                return Err(PolicyError::Record(format!("id {value:?} (1 to 32 letters and digits, once)")));
            }
            id = Some(value.to_owned());
        }
    }
    id.ok_or_else(|| PolicyError::Record("no id".into()))
}

fn set_once<T>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), PolicyError> {
    if slot.replace(value).is_some() {
        return Err(PolicyError::File(format!("{key} given twice")));
    }
    Ok(())
}

fn parse_mode(value: &str) -> Result<Mode, PolicyError> {
    match value.to_ascii_lowercase().as_str() {
        "enforce" => Ok(Mode::Enforce),
        "testing" => Ok(Mode::Testing),
        "none" => Ok(Mode::None),
        other => Err(PolicyError::File(format!("mode {other:?} (enforce, testing or none)"))),
    }
}

fn parse_max_age(value: &str) -> Result<u64, PolicyError> {
    let valid = (1..=10).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<u64>() {
        Ok(seconds) if valid && seconds <= MAX_AGE_LIMIT => Ok(seconds),
        _ => Err(PolicyError::File(format!("max_age {value:?} (0 to {MAX_AGE_LIMIT} seconds)"))),
    }
}

fn parse_mx_pattern(value: &str) -> Result<String, PolicyError> {
    let pattern = value.trim_end_matches('.').to_ascii_lowercase();
    let name = pattern.strip_prefix("*.").unwrap_or(&pattern);
    let valid_label = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if pattern.len() > 253 || !name.contains('.') || !name.split('.').all(valid_label) {
        return Err(PolicyError::File(format!("mx {value:?} is not a host name or *.domain pattern")));
    }
    Ok(pattern)
}

/// RFC 8461 §3.2: max_age is at most 31557600 seconds (about a year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// Patterns kept from one policy; a longer list is refused as malformed.
const MAX_MX_PATTERNS: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\nmax_age: 604800\r\n";

    #[test]
    fn a_policy_parses_with_crlf_or_lf_and_extension_fields() {
        let policy = Policy::parse(GOOD).unwrap();
        assert_eq!(policy.mode, Mode::Enforce);
        assert_eq!(policy.mx, ["mail.example.com", "*.example.net"]);
        assert_eq!(policy.max_age, 604_800);
        let lf = GOOD.replace("\r\n", "\n") + "x_extension: yes\n";
        assert_eq!(Policy::parse(&lf).unwrap(), policy);
        let shouting =
            "VERSION: stsv1\r\nMode: ENFORCE\r\nMX: MAIL.example.com\r\nmx: *.Example.NET.\r\nMax_Age: 604800\r\n";
        assert_eq!(Policy::parse(shouting).unwrap(), policy, "keys and words match in any case");
        let none = Policy::parse("version: STSv1\nmode: none\nmax_age: 0\n").unwrap();
        assert_eq!((none.mode, none.mx.len()), (Mode::None, 0));
    }

    #[test]
    fn malformed_policies_are_refused_naming_the_problem() {
        let cases = [
            ("", "version"),
            ("version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n", "version"),
            ("version: STSv1\nmode: enforced\nmx: a.b\nmax_age: 1\n", "mode"),
            ("version: STSv1\nmode: enforce\nmax_age: 1\n", "mx"),
            ("version: STSv1\nmode: enforce\nmx: a.b\n", "max_age"),
            ("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 31557601\n", "max_age"),
            ("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n", "max_age"),
            ("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 99999999999\n", "max_age"),
            ("version: STSv1\nmode: enforce\nmode: testing\nmx: a.b\nmax_age: 1\n", "twice"),
            ("version: STSv1\nmode: enforce\nmx: com\nmax_age: 1\n", "mx"),
            ("version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n", "mx"),
            ("version: STSv1\nmode: enforce\nmx: *.*.b.c\nmax_age: 1\n", "mx"),
            ("<html>version: STSv1</html>", "version"),
            ("version: STSv1\nmode enforce\n", "':'"),
        ];
        for (text, named) in cases {
            let error = Policy::parse(text).unwrap_err().to_string();
            assert!(error.contains(named), "{text:?}: {error}");
        }
        let many = format!("version: STSv1\nmode: enforce\nmax_age: 1\n{}", "mx: a.example\n".repeat(101));
        assert!(Policy::parse(&many).is_err());
    }

    #[test]
    fn mx_patterns_match_exactly_or_one_leftmost_label() {
        let policy = Policy::parse(GOOD).unwrap();
        assert!(policy.allows_mx("mail.example.com"));
        assert!(policy.allows_mx("MAIL.example.com."));
        assert!(policy.allows_mx("mx1.example.net"));
        assert!(!policy.allows_mx("example.net"), "the wildcard needs a label");
        assert!(!policy.allows_mx("a.b.example.net"), "one label only");
        assert!(!policy.allows_mx("mail.example.com.evil.test"));
        assert!(!policy.allows_mx("xmail.example.com"));
    }

    #[test]
    fn the_txt_record_gives_one_id_or_no_policy() {
        let id = |records: &[&str]| record_id(&records.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>());
        assert_eq!(id(&["v=STSv1; id=20160831085700Z;"]).unwrap(), "20160831085700Z");
        assert_eq!(id(&["v=STSv1;id=abc", "v=spf1 -all"]).unwrap(), "abc");
        assert_eq!(id(&["v=STSv1; id=abc; ext=1"]).unwrap(), "abc");
        assert_eq!(id(&[]), Err(PolicyError::RecordCount(0)));
        assert_eq!(id(&["v=STSv1; id=a", "v=STSv1; id=b"]), Err(PolicyError::RecordCount(2)));
        assert_eq!(id(&["v=STSv1; id=a", "v=STSv10; id=b"]).unwrap(), "a", "v=STSv10 is another version");
        for bad in ["v=STSv1;", "v=STSv1; id=", "v=STSv1; id=has-dash", "v=STSv1; id=a; id=b"] {
            assert!(id(&[bad]).is_err(), "{bad}");
        }
        assert!(id(&[&format!("v=STSv1; id={}", "a".repeat(33))]).is_err());
    }
}
