//! The local maildir: the embedded default for the organization's own domains.
