//! Fuzzes `domainsec_model::SubjectName::parse`, which reads an operator's
//! `-SubjectName` text (dsctl, the controller, certificate requests).
//!
//! INVARIANT, for every input string:
//! - `SubjectName::parse` and `SubjectName::common_name` never panic;
//! - an `Ok` name's `Display` re-parses to an equal name (same RDNs, same
//!   warnings), and printing that again gives the same text;
//! - every RDN value of an `Ok` name is non-empty, has no surrounding whitespace
//!   and holds no `=`;
//! - `SubjectName::common_name(s)`, when `Ok`, has `s` (trimmed) as its first CN.
#![no_main]

use domainsec_model::SubjectName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(name) = SubjectName::parse(input) {
        for (kind, value) in &name.rdns {
            assert!(!value.is_empty(), "{input:?}: empty {kind} value");
            assert_eq!(value.trim(), value, "{input:?}: {kind} value not trimmed");
            assert!(!value.contains('='), "{input:?}: {kind} value {value:?} holds '='");
        }
        let shown = name.to_string();
        let again = SubjectName::parse(&shown);
        assert_eq!(again.as_ref(), Ok(&name), "{input:?} parsed as {name:?}, shown as {shown:?}, which re-parses differently");
        if let Ok(again) = again {
            assert_eq!(again.to_string(), shown, "{input:?}: Display is not stable");
        }
    }
    if let Ok(name) = SubjectName::common_name(input) {
        assert_eq!(name.first_common_name(), Some(input.trim()), "common_name({input:?}) gives {name:?}");
    }
});
