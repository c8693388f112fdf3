//! MX and address lookup with hickory-resolver, and a static overrides table.
