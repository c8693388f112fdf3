//! Fuzzes the MTA-STS parsers an attacker's DNS answers and policy server feed:
//! `policy::Policy::parse` (the policy file) and `policy::record_id` (the TXT records).
//!
//! INVARIANT, for every input:
//! - neither parser panics;
//! - an `Ok` policy has `max_age` at most a year, at most 100 `mx` patterns, each lower
//!   case without a trailing dot, and at least one unless the mode is `none`;
//! - `allows_mx` never panics on the input's lines as host names;
//! - an `Ok` id is 1 to 32 ASCII letters and digits.
#![no_main]

use edge::domain_security::mta_sts::policy::{MAX_AGE_LIMIT, Mode, Policy, record_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(policy) = Policy::parse(input) {
        assert!(policy.max_age <= MAX_AGE_LIMIT, "{input:?}");
        assert!(policy.mx.len() <= 100, "{input:?}");
        assert!(policy.mode == Mode::None || !policy.mx.is_empty(), "{input:?}");
        for pattern in &policy.mx {
            assert!(!pattern.ends_with('.') && *pattern == pattern.to_ascii_lowercase(), "{pattern:?}");
        }
        for line in input.lines() {
            let _ = policy.allows_mx(line);
        }
    }
    let records: Vec<String> = input.split('\n').map(str::to_owned).collect();
    if let Ok(id) = record_id(&records) {
        assert!((1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id:?}");
    }
});
