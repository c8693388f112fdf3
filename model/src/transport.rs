//! The organization-wide transport config (Exchange's `Set-TransportConfig`).

use serde::{Deserialize, Serialize};

use crate::domain::{Domain, DomainPattern};

/// The secure-domain lists that turn on Domain Security per partner domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportConfig {
    /// `TLSSendDomainSecureList`: outbound mail to these domains requires mutual TLS.
    pub tls_send_domain_secure_list: Vec<DomainPattern>,
    /// `TLSReceiveDomainSecureList`: inbound mail from these domains requires mutual TLS.
    pub tls_receive_domain_secure_list: Vec<DomainPattern>,
}

impl TransportConfig {
    /// True when outbound mail to `domain` requires Domain Security.
    pub fn requires_secure_send(&self, domain: &Domain) -> bool {
        self.tls_send_domain_secure_list.iter().any(|p| p.covers(domain))
    }

    /// True when inbound mail from `domain` requires Domain Security.
    pub fn requires_secure_receive(&self, domain: &Domain) -> bool {
        self.tls_receive_domain_secure_list.iter().any(|p| p.covers(domain))
    }
}
