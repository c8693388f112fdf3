//! Fuzzes `edge::smtp::address::Mailbox::parse`, which every `MAIL FROM` and
//! `RCPT TO` path goes through.
//!
//! INVARIANT, for every input string:
//! - `Mailbox::parse` never panics;
//! - an `Ok` mailbox's `Display` is the input with the domain lower-cased, and
//!   re-parses to an equal mailbox;
//! - the domain holds no upper-case letter and the local part is non-empty;
//! - a mailbox whose domain is `woodgrovebank.com` or under it (a partner on the
//!   receive secure list `*.woodgrovebank.com`, `woodgrovebank.com`), in any
//!   spelling the mailbox parser accepts, is one the inbound session's decision
//!   (`domain_security::policy::inbound_requirement` for the Contoso connector)
//!   holds to Domain Security (`Required` or `Malformed`, never `NotRequired`);
//!   and a `Required` domain is the mailbox's own domain, under the entry that
//!   asked for it.
#![no_main]

use std::sync::OnceLock;

use domainsec_fuzz::{contoso_config, is_partner};
use edge::{
    apply::EdgeConfig,
    domain_security::policy::{InboundRequirement, inbound_requirement},
    smtp::address::Mailbox,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let Ok(mailbox) = Mailbox::parse(input) else { return };
    let shown = mailbox.to_string();
    let at = input.rfind('@').expect("an Ok mailbox has an @");
    let expected = format!("{}@{}", &input[..at], input[at + 1..].to_ascii_lowercase());
    assert_eq!(shown, expected, "Display of {input:?}");
    assert_eq!(Mailbox::parse(&shown).as_ref(), Ok(&mailbox), "{input:?} shown as {shown:?} does not re-parse");
    assert!(!mailbox.local().is_empty(), "empty local part from {input:?}");
    assert!(!mailbox.domain().bytes().any(|b| b.is_ascii_uppercase()), "domain of {input:?} not lower-case");

    let config = config();
    let requirement = inbound_requirement(config, &config.receive_connectors[0], Some(mailbox.domain()));
    if is_partner(mailbox.domain()) {
        assert!(
            requirement != InboundRequirement::NotRequired,
            "{input:?} is under the partner's domain, but the session would not apply Domain Security to it"
        );
    }
    if let InboundRequirement::Required { entry, domain } = &requirement {
        assert_eq!(domain.as_str(), mailbox.domain(), "{input:?}: Domain Security required for another domain");
        assert!(entry.covers(domain), "{input:?}: entry {entry} does not cover {domain}");
    }
});

fn config() -> &'static EdgeConfig {
    static CONFIG: OnceLock<EdgeConfig> = OnceLock::new();
    CONFIG.get_or_init(contoso_config)
}
