//! Domain Security (the white paper's heart): checking a partner's certificate —
//! chain, dates, key usage, revocation by CRL and the paper's name-matching
//! rules — and the decisions the SMTP layer takes with the result.

pub mod name_match;
pub mod revocation;
