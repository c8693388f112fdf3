//! Revocation by CRL: fetched over HTTP (through a proxy where configured), cached until `nextUpdate`.
