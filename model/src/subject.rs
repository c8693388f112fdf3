//! X.500 subject names as `New-ExchangeCertificate -SubjectName` takes them
//! (the white paper's Appendix 1): comma-separated relative distinguished names
//! with the abbreviations C, DC, S (or ST), L, O, OU and CN.
//!
//! Limits from the paper's table: C exactly two letters (ISO 3166-1) and at most
//! once; DC 255 characters in all; S and L 128; O 64 and at most once; OU 64; CN
//! 64. More than one CN, and C together with DC, are allowed with a warning. The
//! name is written in the paper's order (C, DC, S, L, O, OU, CN) whatever order it
//! was typed in; DC values keep their relative order.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A parsed subject name in canonical order, with any warnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectName {
    /// The RDNs in canonical order.
    pub rdns: Vec<(RdnType, String)>,
    /// Things that are allowed but unwise (multiple CNs, C with DC, a Unicode "FQDN").
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The attribute types the paper allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RdnType {
    /// Country/Region (ISO 3166-1 alpha-2).
    C,
    /// Domain Component.
    DC,
    /// State or province.
    S,
    /// Locality.
    L,
    /// Organization.
    O,
    /// Organizational unit.
    OU,
    /// Common name.
    CN,
}

/// Why a subject name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// Nothing given.
    #[error("the subject name is empty; give e.g. \"DC=com,DC=Contoso,CN=mail1.contoso.com\"")]
    Empty,
    /// A part without `=`.
    #[error("{part:?} at position {position} is not TYPE=value")]
    NotAnRdn { part: String, position: usize },
    /// An unknown abbreviation.
    #[error("{kind:?} at position {position} is not one of C, DC, S (ST), L, O, OU, CN")]
    UnknownType { kind: String, position: usize },
    /// An empty value.
    #[error("{kind} at position {position} has an empty value")]
    EmptyValue { kind: RdnType, position: usize },
    /// A value that holds `=`: almost always a missing comma.
    #[error("{kind} value {value:?} contains '=' at position {position}: a comma is probably missing before {next:?}")]
    MissingComma { kind: RdnType, value: String, position: usize, next: String },
    /// A value longer than the paper's table allows.
    #[error("{kind} is {length} characters; at most {max} are allowed{hint}")]
    TooLong { kind: RdnType, length: usize, max: usize, hint: &'static str },
    /// DC values together longer than 255 characters.
    #[error("the DC values total {length} characters; at most 255 are allowed in all")]
    DomainComponentsTooLong { length: usize },
    /// A type that may appear once, twice.
    #[error("{kind} may appear only once")]
    Repeated { kind: RdnType },
    /// A country code that is not ISO 3166-1 alpha-2.
    #[error("C={value:?} is not an ISO 3166-1 two-letter country code (e.g. US, DE, ES)")]
    BadCountry { value: String },
    /// A DC with characters a DNS label cannot hold.
    #[error("DC={value:?} holds characters a DNS label cannot (letters, digits and hyphens only)")]
    BadDomainComponent { value: String },
    /// A dangling backslash.
    #[error("a backslash at the end of the subject name escapes nothing")]
    DanglingEscape,
}

impl SubjectName {
    /// Parses `-SubjectName` text. Separators are commas; `\,` escapes a comma
    /// inside a value and `\\` a backslash; a backslash before any other
    /// character is dropped (so `\=` is still the separator, and a value never
    /// holds `=`). Spaces around types and values are trimmed. Error positions
    /// count characters of `input` from 1. No input panics.
    pub fn parse(input: &str) -> Result<Self, SubjectError> {
        let parts = split(input)?;
        if parts.iter().all(|part| trim(&part.chars).is_empty()) {
            return Err(SubjectError::Empty);
        }
        let mut rdns = Vec::new();
        for part in parts.iter().filter(|part| !trim(&part.chars).is_empty()) {
            rdns.push(parse_rdn(part)?);
        }
        check(&rdns)?;
        let warnings = warnings(&rdns);
        rdns.sort_by_key(|(kind, _)| *kind); // stable: DCs keep their order
        Ok(Self { rdns, warnings })
    }

    /// A subject with only a CN (the edge's FQDN when no subject is given).
    pub fn common_name(cn: &str) -> Result<Self, SubjectError> {
        Self::parse(&format!("CN={}", escape(cn)))
    }

    /// The first CN, if any.
    pub fn first_common_name(&self) -> Option<&str> {
        self.rdns.iter().find(|(kind, _)| *kind == RdnType::CN).map(|(_, value)| value.as_str())
    }
}

impl fmt::Display for SubjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.rdns.iter().map(|(kind, value)| format!("{kind}={}", escape(value))).collect();
        f.write_str(&parts.join(", "))
    }
}

impl fmt::Display for RdnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::C => "C",
            Self::DC => "DC",
            Self::S => "S",
            Self::L => "L",
            Self::O => "O",
            Self::OU => "OU",
            Self::CN => "CN",
        })
    }
}

/// One character of the input after unescaping, with its 1-based position in
/// the input as typed (in characters, never bytes).
type Positioned = (usize, char);

/// One comma-separated part of the input.
struct Part {
    /// Its characters, unescaped, each with its position in the input.
    chars: Vec<Positioned>,
    /// Position of the part's first character (the one after the comma).
    start: usize,
}

/// Splits at unescaped commas. Everything after here works on characters with
/// their input positions, so no byte offset of one string is ever used on another
/// (escapes and multi-byte characters shift them).
fn split(input: &str) -> Result<Vec<Part>, SubjectError> {
    let mut parts = Vec::new();
    let mut current = Part { chars: Vec::new(), start: 1 };
    let mut chars = input.chars().zip(1..);
    while let Some((c, position)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((escaped, escaped_position)) => current.chars.push((escaped_position, escaped)),
                None => return Err(SubjectError::DanglingEscape),
            },
            ',' => parts.push(std::mem::replace(&mut current, Part { chars: Vec::new(), start: position + 1 })),
            c => current.chars.push((position, c)),
        }
    }
    parts.push(current);
    Ok(parts)
}

fn parse_rdn(part: &Part) -> Result<(RdnType, String), SubjectError> {
    let Some(equals) = part.chars.iter().position(|&(_, c)| c == '=') else {
        return Err(SubjectError::NotAnRdn { part: text(trim(&part.chars)), position: part.start });
    };
    let (kind_chars, value) = (&part.chars[..equals], &part.chars[equals + 1..]);
    // The type's first character, or the `=` when the type is empty.
    let kind_position = trim(&part.chars).first().map_or(part.start, |&(position, _)| position);
    let kind = match text(trim(kind_chars)).to_ascii_uppercase().as_str() {
        "C" => RdnType::C,
        "DC" => RdnType::DC,
        "S" | "ST" => RdnType::S,
        "L" => RdnType::L,
        "O" => RdnType::O,
        "OU" => RdnType::OU,
        "CN" => RdnType::CN,
        other => return Err(SubjectError::UnknownType { kind: other.to_owned(), position: kind_position }),
    };
    let value = trim(value);
    if value.is_empty() {
        return Err(SubjectError::EmptyValue { kind, position: kind_position });
    }
    if let Some(equals) = value.iter().position(|&(_, c)| c == '=') {
        let before = &value[..equals];
        let next_start = before.iter().rposition(|&(_, c)| c.is_whitespace()).map_or(0, |i| i + 1);
        // `next_start <= equals < value.len()`: the index holds.
        let position = value[next_start].0;
        return Err(SubjectError::MissingComma {
            kind,
            value: text(value),
            position,
            next: format!("{}=", text(&before[next_start..])),
        });
    }
    Ok((kind, text(value)))
}

/// `chars` without leading and trailing whitespace (as `str::trim`).
fn trim(chars: &[Positioned]) -> &[Positioned] {
    let start = chars.iter().position(|&(_, c)| !c.is_whitespace()).unwrap_or(chars.len());
    let end = chars.iter().rposition(|&(_, c)| !c.is_whitespace()).map_or(start, |last| last + 1);
    chars.get(start..end).unwrap_or_default()
}

fn text(chars: &[Positioned]) -> String {
    chars.iter().map(|&(_, c)| c).collect()
}

/// A value as it is typed: the characters `split` takes as syntax escaped.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn check(rdns: &[(RdnType, String)]) -> Result<(), SubjectError> {
    let count = |kind| rdns.iter().filter(|(k, _)| *k == kind).count();
    for kind in [RdnType::C, RdnType::O] {
        if count(kind) > 1 {
            return Err(SubjectError::Repeated { kind });
        }
    }
    let mut dc_total = 0;
    for (kind, value) in rdns {
        let length = value.chars().count();
        let (max, hint) = match kind {
            RdnType::C => (2, ""),
            RdnType::DC => (255, ""),
            RdnType::S | RdnType::L => (128, ""),
            RdnType::O | RdnType::OU => (64, ""),
            RdnType::CN => (
                64,
                ". A CN cannot hold an FQDN longer than 64 characters: put the FQDN in --domain-name \
                 (the subject alternative name) and a shorter CN here",
            ),
        };
        if length > max {
            return Err(SubjectError::TooLong { kind: *kind, length, max, hint });
        }
        match kind {
            RdnType::C if !is_country(value) => return Err(SubjectError::BadCountry { value: value.clone() }),
            RdnType::DC => {
                if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(SubjectError::BadDomainComponent { value: value.clone() });
                }
                dc_total += length;
            }
            _ => {}
        }
    }
    if dc_total > 255 {
        return Err(SubjectError::DomainComponentsTooLong { length: dc_total });
    }
    Ok(())
}

fn warnings(rdns: &[(RdnType, String)]) -> Vec<String> {
    let mut warnings = Vec::new();
    let cns: Vec<&String> = rdns.iter().filter(|(k, _)| *k == RdnType::CN).map(|(_, v)| v).collect();
    if cns.len() > 1 {
        warnings.push("more than one CN: some software assumes a single common name; one CN is recommended".to_owned());
    }
    let has = |kind| rdns.iter().any(|(k, _)| *k == kind);
    if has(RdnType::C) && has(RdnType::DC) {
        warnings.push("C and DC are by convention mutually exclusive; name by country or by DNS name".to_owned());
    }
    for cn in cns {
        if !cn.is_ascii() && cn.contains('.') && !cn.contains(' ') {
            warnings.push(format!(
                "CN {cn:?} looks like an FQDN but holds non-ASCII characters: software will not take it as a \
                 DNS name (the paper's mïcrosoft.com example); put the real DNS name in --domain-name"
            ));
        }
    }
    warnings
}

fn is_country(value: &str) -> bool {
    let upper = value.to_ascii_uppercase();
    upper.len() == 2 && ISO_3166_ALPHA_2.split(' ').any(|code| code == upper)
}

/// ISO 3166-1 alpha-2 codes.
const ISO_3166_ALPHA_2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI \
FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT \
JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ \
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS \
RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA \
UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

#[cfg(test)]
mod tests {
    use super::*;

    fn text(input: &str) -> String {
        SubjectName::parse(input).unwrap().to_string()
    }

    #[test]
    fn parses_the_papers_examples() {
        assert_eq!(text("DC=com,DC=Contoso,CN=mail1.contoso.com"), "DC=com, DC=Contoso, CN=mail1.contoso.com");
        assert_eq!(text("O=contoso corp, CN=mail1.contoso.com"), "O=contoso corp, CN=mail1.contoso.com");
        assert_eq!(text("DC=contoso, DC=com, CN=mail1.contoso.com"), "DC=contoso, DC=com, CN=mail1.contoso.com");
        assert_eq!(
            text("DC= contoso, DC=com, O=contoso corp, CN=mail1.contoso.com"),
            "DC=contoso, DC=com, O=contoso corp, CN=mail1.contoso.com"
        );
        assert_eq!(text("c=us, o=contoso corp, cn=mail1.contoso.com"), "C=us, O=contoso corp, CN=mail1.contoso.com");
        assert_eq!(
            text("C=ES,O=Diversión de Bicicleta,CN=mail1. DiversiondeBicicleta.com"),
            "C=ES, O=Diversión de Bicicleta, CN=mail1. DiversiondeBicicleta.com"
        );
    }

    #[test]
    fn refuses_the_papers_missing_comma_and_shows_where() {
        let error = SubjectName::parse("C=US o=contoso corp, CN=mail1.contoso.com").unwrap_err();
        assert_eq!(
            error,
            SubjectError::MissingComma {
                kind: RdnType::C,
                value: "US o=contoso corp".into(),
                position: 6,
                next: "o=".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "C value \"US o=contoso corp\" contains '=' at position 6: a comma is probably missing before \"o=\""
        );
    }

    #[test]
    fn writes_rdns_in_the_papers_order() {
        assert_eq!(
            text("CN=mail1.contoso.com, OU=IT, O=Contoso, L=Redmond, S=WA, C=US"),
            "C=US, S=WA, L=Redmond, O=Contoso, OU=IT, CN=mail1.contoso.com"
        );
        assert_eq!(text("CN=x, DC=contoso, ST=WA, DC=com"), "DC=contoso, DC=com, S=WA, CN=x");
    }

    #[test]
    fn enforces_the_papers_limits() {
        let long = |n: usize| "a".repeat(n);
        assert!(matches!(
            SubjectName::parse(&format!("CN={}", long(65))),
            Err(SubjectError::TooLong { kind: RdnType::CN, length: 65, max: 64, .. })
        ));
        assert!(SubjectName::parse(&format!("CN={}", long(64))).is_ok());
        assert!(matches!(SubjectName::parse(&format!("O={}", long(65))), Err(SubjectError::TooLong { max: 64, .. })));
        assert!(matches!(SubjectName::parse(&format!("OU={}", long(65))), Err(SubjectError::TooLong { max: 64, .. })));
        assert!(matches!(SubjectName::parse(&format!("L={}", long(129))), Err(SubjectError::TooLong { max: 128, .. })));
        assert!(SubjectName::parse(&format!("S={}", long(128))).is_ok());
        let dcs = (0..5).map(|_| format!("DC={}", long(60))).collect::<Vec<_>>().join(",");
        assert_eq!(SubjectName::parse(&dcs), Err(SubjectError::DomainComponentsTooLong { length: 300 }));
        assert_eq!(SubjectName::parse("C=US, C=DE, CN=x"), Err(SubjectError::Repeated { kind: RdnType::C }));
        assert_eq!(SubjectName::parse("O=a, O=b, CN=x"), Err(SubjectError::Repeated { kind: RdnType::O }));
        assert_eq!(
            SubjectName::parse("C=USA, CN=x"),
            Err(SubjectError::TooLong { kind: RdnType::C, length: 3, max: 2, hint: "" })
        );
        assert_eq!(SubjectName::parse("C=XX, CN=x"), Err(SubjectError::BadCountry { value: "XX".into() }));
        assert_eq!(
            SubjectName::parse("DC=con toso, CN=x"),
            Err(SubjectError::BadDomainComponent { value: "con toso".into() })
        );
    }

    #[test]
    fn says_why_a_long_cn_cannot_hold_the_fqdn() {
        let fqdn = format!("{}.contoso.com", "a".repeat(60));
        let message = SubjectName::parse(&format!("CN={fqdn}")).unwrap_err().to_string();
        assert!(message.contains("put the FQDN in --domain-name"), "{message}");
    }

    #[test]
    fn warns_but_accepts_what_is_merely_unwise() {
        let name = SubjectName::parse("CN=a.contoso.com, CN=b.contoso.com").unwrap();
        assert!(name.warnings[0].starts_with("more than one CN"));
        let name = SubjectName::parse("C=US, DC=com, CN=x").unwrap();
        assert!(name.warnings[0].starts_with("C and DC are by convention mutually exclusive"));
        let name = SubjectName::parse("CN=mail.mïcrosoft.com").unwrap();
        assert!(name.warnings[0].contains("looks like an FQDN but holds non-ASCII"), "{:?}", name.warnings);
        assert!(SubjectName::parse("O=Diversión de Bicicleta, CN=mail1.contoso.com").unwrap().warnings.is_empty());
    }

    #[test]
    fn refuses_malformed_parts_with_their_position() {
        assert_eq!(SubjectName::parse(""), Err(SubjectError::Empty));
        assert_eq!(
            SubjectName::parse("CN=x, mail1"),
            Err(SubjectError::NotAnRdn { part: "mail1".into(), position: 6 })
        );
        assert_eq!(
            SubjectName::parse("CN=x, E=a@b.c"),
            Err(SubjectError::UnknownType { kind: "E".into(), position: 7 })
        );
        assert_eq!(SubjectName::parse("CN=  , O=x"), Err(SubjectError::EmptyValue { kind: RdnType::CN, position: 1 }));
        assert_eq!(SubjectName::parse("CN=x\\"), Err(SubjectError::DanglingEscape));
    }

    #[test]
    fn escaped_commas_stay_in_the_value() {
        let name = SubjectName::parse("O=Contoso\\, Ltd, CN=mail1.contoso.com").unwrap();
        assert_eq!(name.rdns[0], (RdnType::O, "Contoso, Ltd".to_owned()));
        assert_eq!(name.to_string(), "O=Contoso\\, Ltd, CN=mail1.contoso.com");
        assert_eq!(
            SubjectName::common_name("mail1.contoso.com").unwrap().first_common_name(),
            Some("mail1.contoso.com")
        );
    }
    #[test]
    fn a_value_with_multi_byte_whitespace_before_an_equals_sign_is_refused_not_a_panic() {
        assert_eq!(
            SubjectName::parse("CN=a\u{00A0}b=c"),
            Err(SubjectError::MissingComma {
                kind: RdnType::CN,
                value: "a\u{00A0}b=c".into(),
                position: 6,
                next: "b=".into()
            })
        );
    }

    #[test]
    fn positions_count_characters_of_the_input_as_typed() {
        // Multi-byte whitespace before the type, and an escape before the error.
        assert_eq!(
            SubjectName::parse("CN=x,\u{3000}E=y"),
            Err(SubjectError::UnknownType { kind: "E".into(), position: 7 })
        );
        assert_eq!(
            SubjectName::parse("O=a\\,b c=d"),
            Err(SubjectError::MissingComma {
                kind: RdnType::O,
                value: "a,b c=d".into(),
                position: 8,
                next: "c=".into()
            })
        );
        assert_eq!(
            SubjectName::parse("O=\u{00A0}é\u{2003}x=y"),
            Err(SubjectError::MissingComma {
                kind: RdnType::O,
                value: "é\u{2003}x=y".into(),
                position: 6,
                next: "x=".into()
            })
        );
    }

    #[test]
    fn backslashes_in_a_value_survive_display_and_reparse() {
        let name = SubjectName::parse("O=a\\\\b, CN=x").unwrap();
        assert_eq!(name.rdns[0], (RdnType::O, "a\\b".to_owned()));
        assert_eq!(SubjectName::parse(&name.to_string()), Ok(name));
        let name = SubjectName::common_name("back\\slash, comma").unwrap();
        assert_eq!(name.first_common_name(), Some("back\\slash, comma"));
    }

    #[test]
    fn tricky_inputs_give_an_answer_and_never_panic() {
        let cases = [
            "",
            ",",
            ",,,",
            " , ",
            "=",
            "==",
            "=x",
            "CN=",
            "CN==",
            "CN=x=",
            "=CN=x",
            "CN=x,",
            ",CN=x",
            "CN=x,,O=y",
            "\\",
            "CN=\\",
            "CN=x\\,",
            "CN=x\\+",
            "CN=x\\,\\",
            "CN=\\,",
            "CN=\\ ",
            "CN=\\\\",
            "\\CN=x",
            "CN\\=x",
            "CN=a\\=b",
            "CN=a\u{00A0}b=c",
            "CN=\u{00A0}=",
            "CN=\u{00A0}\u{00A0}=\u{00A0}",
            "\u{00A0}CN\u{00A0}=\u{00A0}x\u{00A0}",
            "CN=\u{3000}x\u{3000}y=z",
            "CN=\u{2028}=",
            "\u{85}CN=x\u{85}=",
            "CN=é=",
            "CN=é é=é",
            "é=x",
            "\u{1F600}=\u{1F600}",
            "CN=\u{1F600} \u{1F600}=",
            "C=ÉS",
            "C=\u{0130}S",
            "DC=ñ",
            "CN=x\u{0}",
            "CN=\t\r\n",
        ];
        for input in cases {
            // Each either parses to something that prints and parses back to itself, or is an error.
            if let Ok(name) = SubjectName::parse(input) {
                assert_eq!(SubjectName::parse(&name.to_string()).as_ref(), Ok(&name), "{input:?}");
            }
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Characters the parser treats specially, whitespace of every width, and
        /// multi-byte letters, so generated inputs hit the paths that once sliced
        /// strings at byte offsets.
        fn tricky_char() -> impl Strategy<Value = char> {
            prop_oneof![
                Just('='),
                Just(','),
                Just('\\'),
                Just('+'),
                Just(' '),
                Just('\t'),
                Just('\u{00A0}'),
                Just('\u{2003}'),
                Just('\u{3000}'),
                Just('é'),
                Just('\u{1F600}'),
                Just('.'),
                Just('a'),
                Just('C'),
                Just('N'),
            ]
        }

        fn tricky_text(max: usize) -> impl Strategy<Value = String> {
            proptest::collection::vec(tricky_char(), 0..max).prop_map(|chars| chars.into_iter().collect())
        }

        /// `TYPE=value` parts joined by commas: many of these parse, so the
        /// round trip is exercised, not only the refusals.
        fn rdn_list() -> impl Strategy<Value = String> {
            let kind = prop_oneof![
                Just("C"),
                Just("DC"),
                Just("S"),
                Just("ST"),
                Just("L"),
                Just("O"),
                Just("OU"),
                Just("CN"),
                Just(" cn "),
                Just("\u{00A0}CN"),
            ];
            proptest::collection::vec((kind, tricky_text(12)), 1..5).prop_map(|rdns| {
                rdns.iter().map(|(kind, value)| format!("{kind}={value}")).collect::<Vec<_>>().join(",")
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            #[test]
            fn parse_never_panics_and_what_it_accepts_prints_and_reparses_to_itself(
                input in prop_oneof![rdn_list(), tricky_text(24), any::<String>()]
            ) {
                if let Ok(name) = SubjectName::parse(&input) {
                    prop_assert_eq!(SubjectName::parse(&name.to_string()), Ok(name));
                }
            }
        }
    }
}
