//! DNS domain names as the directory stores them: lower-case A-labels.
//!
//! Non-ASCII input is converted to A-labels (IDNA/UTS #46) rather than refused, so
//! `bücher.example` is stored as `xn--bcher-kva.example`. Every name must have at
//! least two labels, since the directory only holds internet domains.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A fully qualified domain name: LDH labels of 1–63 octets, at most 253 octets in
/// all, at least two labels, lower case, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

/// A domain, or with a leading `*.` the domain together with all its subdomains.
///
/// Used for accepted domains and the secure-domain lists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DomainPattern {
    /// Only this domain.
    Exact(Domain),
    /// This domain and every subdomain of it (`*.contoso.com`).
    WithSubdomains(Domain),
}

/// The address space of a send connector: `*` (every domain) or a domain pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AddressSpace {
    /// `*`: every domain.
    Any,
    /// A domain, or `*.domain` for the domain and its subdomains.
    Domain(DomainPattern),
}

/// Why a string is not a valid domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Nothing was given.
    #[error("empty domain name")]
    Empty,
    /// Two dots in a row, or a leading dot.
    #[error("empty label")]
    EmptyLabel,
    /// A label longer than DNS allows.
    #[error("label {label:?} is {length} characters long; at most 63 are allowed")]
    LabelTooLong { label: String, length: usize },
    /// The whole name is longer than DNS allows.
    #[error("name is {length} characters long; at most 253 are allowed (255 octets on the wire)")]
    TooLong { length: usize },
    /// A character outside letters, digits and hyphen.
    #[error("character {character:?} is not allowed; labels hold letters, digits and hyphens only")]
    InvalidCharacter { character: char },
    /// A label starting or ending with `-`.
    #[error("label {label:?} starts or ends with a hyphen")]
    HyphenAtEdge { label: String },
    /// `localhost` and other single-label names.
    #[error("a single-label name is not an internet domain; give the full name, e.g. contoso.com")]
    SingleLabel,
    /// The top-level label is all digits, so the name looks like an IP address.
    #[error("the top-level label {label:?} is numeric; IP addresses are not domain names")]
    NumericTopLevel { label: String },
    /// A `*` where this field takes plain domain names.
    #[error("a wildcard is not allowed here")]
    WildcardNotAllowed,
    /// A `*` anywhere but as the whole first label.
    #[error("a wildcard is only allowed as the whole first label, as in *.contoso.com")]
    MisplacedWildcard,
    /// Non-ASCII input that IDNA cannot convert, or a malformed `xn--` label.
    #[error("not a valid internationalized domain name (IDNA): {reason}")]
    Idna { reason: String },
}

// === impl Domain ===

impl Domain {
    /// Parses and normalises a domain name (no wildcard).
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        if input.contains('*') {
            return Err(DomainError::WildcardNotAllowed);
        }
        let ascii = to_ascii(input)?;
        check_ldh(&ascii)?;
        Ok(Self(ascii))
    }

    /// The name as lower-case A-labels.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is `other` or a subdomain of it, at any depth.
    pub fn is_within(&self, other: &Domain) -> bool {
        self == other || self.0.strip_suffix(other.as_str()).is_some_and(|prefix| prefix.ends_with('.'))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Domain {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Domain {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Domain> for String {
    fn from(value: Domain) -> Self {
        value.0
    }
}

// === impl DomainPattern ===

impl DomainPattern {
    /// Parses `contoso.com` or `*.contoso.com`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        match input.strip_prefix("*.") {
            Some(rest) => Domain::parse(rest).map(Self::WithSubdomains).map_err(|error| match error {
                DomainError::WildcardNotAllowed => DomainError::MisplacedWildcard,
                other => other,
            }),
            None => Domain::parse(input).map(Self::Exact).map_err(|error| match error {
                DomainError::WildcardNotAllowed => DomainError::MisplacedWildcard,
                other => other,
            }),
        }
    }

    /// The domain itself, without the `*.`.
    pub fn domain(&self) -> &Domain {
        match self {
            Self::Exact(domain) | Self::WithSubdomains(domain) => domain,
        }
    }

    /// True when `raw` — a domain as a peer wrote it, valid or not — could be
    /// covered: its labels (split at every dot IDNA knows, empty ones dropped,
    /// each lower-cased or converted to an A-label where IDNA can) end with this
    /// pattern's labels. For names that fail [`Domain::parse`], so that a
    /// malformed spelling of a listed domain is never taken for an unlisted one.
    pub fn could_cover(&self, raw: &str) -> bool {
        let labels = raw_labels(raw);
        let own: Vec<&str> = self.domain().as_str().split('.').collect();
        let tail = labels.len().checked_sub(own.len()).map(|start| &labels[start..]);
        let ends_with_own = tail.is_some_and(|tail| tail.iter().zip(&own).all(|(a, b)| a == b));
        match self {
            Self::Exact(_) => ends_with_own && labels.len() == own.len(),
            Self::WithSubdomains(_) => ends_with_own,
        }
    }

    /// True when `candidate` is covered: equal, or a subdomain for `*.` patterns.
    pub fn covers(&self, candidate: &Domain) -> bool {
        match self {
            Self::Exact(domain) => candidate == domain,
            Self::WithSubdomains(domain) => candidate.is_within(domain),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(domain) => write!(f, "{domain}"),
            Self::WithSubdomains(domain) => write!(f, "*.{domain}"),
        }
    }
}

impl FromStr for DomainPattern {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for DomainPattern {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DomainPattern> for String {
    fn from(value: DomainPattern) -> Self {
        value.to_string()
    }
}

// === impl AddressSpace ===

impl AddressSpace {
    /// Parses `*`, `woodgrovebank.com` or `*.woodgrovebank.com`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        if input == "*" {
            return Ok(Self::Any);
        }
        DomainPattern::parse(input).map(Self::Domain)
    }
}

impl fmt::Display for AddressSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Domain(pattern) => write!(f, "{pattern}"),
        }
    }
}

impl FromStr for AddressSpace {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for AddressSpace {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AddressSpace> for String {
    fn from(value: AddressSpace) -> Self {
        value.to_string()
    }
}

/// The labels of a name that may not parse: split at `.` and the dots IDNA maps
/// to it, empty labels dropped, each label as an A-label where IDNA converts it,
/// else lower-cased as given.
fn raw_labels(raw: &str) -> Vec<String> {
    raw.split(['.', '\u{3002}', '\u{FF0E}', '\u{FF61}'])
        .filter(|label| !label.is_empty())
        .map(|label| {
            if label.is_ascii() {
                return label.to_ascii_lowercase();
            }
            idna::domain_to_ascii(label).unwrap_or_else(|_| label.to_lowercase())
        })
        .collect()
}

/// Converts to lower-case A-labels; a single trailing dot (the DNS root) is dropped.
fn to_ascii(input: &str) -> Result<String, DomainError> {
    if input.is_empty() {
        return Err(DomainError::Empty);
    }
    let trimmed = input.strip_suffix('.').unwrap_or(input);
    if trimmed.is_empty() {
        return Err(DomainError::Empty);
    }
    // Empty labels first: IDNA would report them less clearly.
    if trimmed.split('.').any(str::is_empty) {
        return Err(DomainError::EmptyLabel);
    }
    let has_ace_label =
        trimmed.split('.').any(|label| label.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("xn--")));
    if trimmed.is_ascii() && !has_ace_label {
        if let Some(character) = trimmed.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.')) {
            return Err(DomainError::InvalidCharacter { character });
        }
        return Ok(trimmed.to_ascii_lowercase());
    }
    if let Some(character) =
        trimmed.chars().find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(DomainError::InvalidCharacter { character });
    }
    idna::domain_to_ascii_strict(trimmed).map_err(|error| DomainError::Idna { reason: error.to_string() })
}

/// Checks the LDH and length rules on an A-label name.
fn check_ldh(ascii: &str) -> Result<(), DomainError> {
    if ascii.len() > MAX_NAME_LENGTH {
        return Err(DomainError::TooLong { length: ascii.len() });
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(DomainError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LENGTH {
            return Err(DomainError::LabelTooLong { label: (*label).to_owned(), length: label.len() });
        }
        if let Some(character) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(DomainError::InvalidCharacter { character });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(DomainError::HyphenAtEdge { label: (*label).to_owned() });
        }
    }
    if labels.len() < 2 {
        return Err(DomainError::SingleLabel);
    }
    if let Some(top) = labels.last()
        && top.chars().all(|c| c.is_ascii_digit())
    {
        return Err(DomainError::NumericTopLevel { label: (*top).to_owned() });
    }
    Ok(())
}

const MAX_LABEL_LENGTH: usize = 63;
const MAX_NAME_LENGTH: usize = 253;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_byte_character_across_the_fourth_byte_is_judged_not_a_panic() {
        // `label[..4]` once sliced inside `é`: peer input must never panic.
        for raw in ["aaa\u{e9}.example", "r\u{e9}\u{200d}x.example", "xn-\u{e9}.example"] {
            let _ = Domain::parse(raw);
            let _ = DomainPattern::parse(raw);
        }
        assert!(Domain::parse("aaa\u{e9}.example").is_ok(), "a valid IDN");
    }

    #[test]
    fn normalises_case_and_trailing_dot() {
        assert_eq!(Domain::parse("WoodgroveBank.COM.").unwrap().as_str(), "woodgrovebank.com");
    }

    #[test]
    fn converts_unicode_to_a_labels() {
        assert_eq!(Domain::parse("Bücher.example").unwrap().as_str(), "xn--bcher-kva.example");
        assert_eq!(Domain::parse("mïcrosoft.com").unwrap().as_str(), "xn--mcrosoft-u2a.com");
    }

    #[test]
    fn accepts_valid_a_labels_and_refuses_broken_ones() {
        assert_eq!(Domain::parse("XN--BCHER-KVA.example").unwrap().as_str(), "xn--bcher-kva.example");
        assert!(matches!(
            Domain::parse("xn--zz-.example"),
            Err(DomainError::Idna { .. } | DomainError::HyphenAtEdge { .. })
        ));
    }

    #[test]
    fn refuses_each_ldh_rule_with_its_reason() {
        assert_eq!(Domain::parse(""), Err(DomainError::Empty));
        assert_eq!(Domain::parse("."), Err(DomainError::Empty));
        assert_eq!(Domain::parse("woodgrove..com"), Err(DomainError::EmptyLabel));
        assert_eq!(Domain::parse(".woodgrove.com"), Err(DomainError::EmptyLabel));
        assert_eq!(Domain::parse("contoso"), Err(DomainError::SingleLabel));
        assert_eq!(Domain::parse("wood_grove.com"), Err(DomainError::InvalidCharacter { character: '_' }));
        assert_eq!(Domain::parse("wood grove.com"), Err(DomainError::InvalidCharacter { character: ' ' }));
        assert_eq!(Domain::parse("-wood.com"), Err(DomainError::HyphenAtEdge { label: "-wood".into() }));
        assert_eq!(Domain::parse("192.168.1.1"), Err(DomainError::NumericTopLevel { label: "1".into() }));
        assert_eq!(Domain::parse("*.contoso.com"), Err(DomainError::WildcardNotAllowed));
    }

    #[test]
    fn enforces_label_and_name_length_limits() {
        let label63 = "a".repeat(63);
        assert!(Domain::parse(&format!("{label63}.com")).is_ok());
        let label64 = "a".repeat(64);
        assert_eq!(
            Domain::parse(&format!("{label64}.com")),
            Err(DomainError::LabelTooLong { label: label64, length: 64 })
        );
        // 4 labels of 62 + 3 dots = 251, plus ".ab" = 254 > 253.
        let long = format!("{0}.{0}.{0}.{0}.ab", "b".repeat(62));
        assert_eq!(Domain::parse(&long), Err(DomainError::TooLong { length: 254 }));
        let fits = format!("{0}.{0}.{0}.{0}.a", "b".repeat(62));
        assert!(Domain::parse(&fits).is_ok());
    }

    #[test]
    fn patterns_take_a_wildcard_only_as_the_whole_first_label() {
        assert_eq!(DomainPattern::parse("*.Contoso.com").unwrap().to_string(), "*.contoso.com");
        assert_eq!(DomainPattern::parse("a.*.contoso.com"), Err(DomainError::MisplacedWildcard));
        assert_eq!(DomainPattern::parse("*contoso.com"), Err(DomainError::MisplacedWildcard));
        assert_eq!(DomainPattern::parse("*.*.contoso.com"), Err(DomainError::MisplacedWildcard));
        assert_eq!(DomainPattern::parse("*"), Err(DomainError::MisplacedWildcard));
    }

    #[test]
    fn patterns_cover_exactly_or_with_subdomains() {
        let exact = DomainPattern::parse("contoso.com").unwrap();
        let wide = DomainPattern::parse("*.contoso.com").unwrap();
        let apex = Domain::parse("contoso.com").unwrap();
        let sub = Domain::parse("test.contoso.com").unwrap();
        let lookalike = Domain::parse("evilcontoso.com").unwrap();
        assert!(exact.covers(&apex) && !exact.covers(&sub));
        assert!(wide.covers(&apex) && wide.covers(&sub) && !wide.covers(&lookalike));
    }

    #[test]
    fn address_space_star_means_any() {
        assert_eq!(AddressSpace::parse("*").unwrap(), AddressSpace::Any);
        assert_eq!(AddressSpace::parse("woodgrovebank.com").unwrap().to_string(), "woodgrovebank.com");
        assert!(AddressSpace::parse("**").is_err());
    }

    #[test]
    fn serde_round_trips_through_the_normalised_string() {
        let pattern: DomainPattern = serde_json::from_str("\"*.CONTOSO.com\"").unwrap();
        assert_eq!(serde_json::to_string(&pattern).unwrap(), "\"*.contoso.com\"");
        assert!(serde_json::from_str::<Domain>("\"bad..com\"").is_err());
    }
}
