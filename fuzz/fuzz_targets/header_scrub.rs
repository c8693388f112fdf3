//! Fuzzes `edge::domain_security::mark::scrub`, which removes forged Domain
//! Secured marks from every message arriving from outside.
//!
//! INVARIANT, for every message:
//! - `scrub` never panics;
//! - the output's header section (everything before the first empty line: a line
//!   that is only CRLF or LF) holds no field named `X-DomainSec-Auth` (any ASCII
//!   case, whitespace allowed around the name before the colon);
//! - it holds no `Authentication-Results` or `ARC-Authentication-Results` field
//!   (same name rules) whose value contains `x-domainsec` (any case), whether
//!   read as it stands or with its RFC 5322 comments (`(…)`, nested, with
//!   quoted-pairs, none inside a quoted string) removed;
//! - it holds no `Authentication-Results` field whose authserv-id, as a
//!   conforming RFC 8601 reader sees it (CFWS, a token or a quoted-string, then
//!   CFWS, `;` or the end; any case, trailing dots ignored), claims the
//!   organization: a name the edge answers as (mail1.contoso.com,
//!   edge1.contoso.com), contoso.com or a name under it;
//! - the body (everything after the first empty line) is byte-identical to the
//!   input's, and the output has an empty line exactly when the input has one.
//!
//! Fields are read by `domainsec_fuzz::headers` (fuzz/src/headers.rs), a small
//! parser of its own, not the code under test: lines end at LF; a line starting
//! with SP or HTAB continues (is unfolded into) the field before it; a
//! continuation line with no field before it starts a field of its own; a line
//! without a colon is not a field.
#![no_main]

use domainsec_fuzz::headers::{escape, forged_field, split_message};
use domainsec_model::Domain;
use edge::domain_security::mark::{OwnNames, scrub};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|message: &[u8]| {
    let output = scrub(message, own_names());
    let (_, body_in) = split_message(message);
    let (_, body_out) = split_message(&output);
    assert!(body_in == body_out, "the body changed: {:?} became {:?}", body_in.map(escape), body_out.map(escape));
    if let Some((field, rule)) = forged_field(&output, HOSTS, DOMAINS) {
        panic!("{rule} survived: {:?}\ninput: {:?}", escape(&field), escape(message));
    }
});

/// The names this edge answers as, and the organization's domain.
const HOSTS: &[&str] = &["mail1.contoso.com", "edge1.contoso.com"];
const DOMAINS: &[&str] = &["contoso.com"];

fn own_names() -> &'static OwnNames {
    static OWN: std::sync::OnceLock<OwnNames> = std::sync::OnceLock::new();
    OWN.get_or_init(|| {
        let domains: Vec<Domain> = DOMAINS.iter().map(|d| Domain::parse(d).expect("a domain")).collect();
        OwnNames::new(HOSTS.iter().copied(), &domains)
    })
}
