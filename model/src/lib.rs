//! The directory's domain types, shared by the controller, the edge agent and `dsctl`.
//!
//! Every value that crosses a boundary (gRPC, CLI, config file, snapshot) is parsed
//! into one of these types exactly once; code past the boundary never re-checks.
//! Parse errors name the rule that failed, and [`InvalidField`] adds the field path
//! and the offending value, which is what an operator sees.
//!
//! # Layout
//! - [`domain`]: DNS domain names, `*.` patterns and send-connector address spaces.
//! - [`net`]: receive-connector bindings, smart hosts and remote IP ranges.
//! - [`connector`]: send and receive connectors and their enumerations.
//! - [`transport`]: the organization-wide transport config (secure-domain lists, CRL proxy).
//! - [`role`]: admin roles.
//! - [`subject`]: X.500 subject names for certificates (the paper's Appendix 1).
//! - [`credentials`]: the admin credential bundle file.

pub mod connector;
pub mod credentials;
pub mod domain;
pub mod fingerprint;
pub mod net;
pub mod role;
pub mod subject;
pub mod transport;

pub use connector::{
    AuthMechanism, MessageSize, ObjectName, PermissionGroup, ProtocolLoggingLevel, ReceiveConnector, Routing,
    SendConnector, ValueError,
};
pub use domain::{AddressSpace, Domain, DomainError, DomainPattern};
pub use fingerprint::Fingerprint;
pub use net::{Binding, IpRange, NetError, SmartHost, SmartHostName};
pub use role::Role;
pub use subject::{RdnType, SubjectError, SubjectName};
pub use transport::{CrlProxy, ProxyBypass, ProxyError, TransportConfig};

use std::fmt;

/// A value that failed validation, with the field path (`address_spaces[1]`) and the rule.
///
/// Shown as `field "value": rule`, or `field: rule` when the value is empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct InvalidField {
    /// Path of the field in the request, e.g. `tls_send_domain_secure_list[1]`.
    pub field: String,
    /// The value as it was given.
    pub value: String,
    /// What rule the value broke, in words an operator understands.
    pub rule: String,
}

impl InvalidField {
    fn describe(&self) -> String {
        if self.value.is_empty() {
            format!("{}: {}", self.field, self.rule)
        } else {
            format!("{} {:?}: {}", self.field, self.value, self.rule)
        }
    }

    /// Builds an error for `field` holding `value` that broke `rule`.
    pub fn new(field: impl Into<String>, value: impl Into<String>, rule: impl fmt::Display) -> Self {
        Self { field: field.into(), value: value.into(), rule: rule.to_string() }
    }
}

/// Parses every entry of a list with `parse`, naming the failing index (`field[i]`).
///
/// An empty list is accepted here; callers that need at least one entry check for it.
pub fn parse_list<T, E: fmt::Display>(
    field: &str,
    values: &[String],
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, InvalidField> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            parse(value).map_err(|error| InvalidField::new(format!("{field}[{index}]"), value, error))
        })
        .collect()
}

/// Like [`parse_list`], and refuses duplicates (after normalisation) and, if
/// `non_empty`, an empty list. Linear: the secure-domain lists run to 100,000 entries.
pub fn parse_set<T: Eq + std::hash::Hash + fmt::Display, E: fmt::Display>(
    field: &str,
    values: &[String],
    non_empty: bool,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, InvalidField> {
    if non_empty && values.is_empty() {
        return Err(InvalidField::new(field, "", "must have at least one entry"));
    }
    let parsed = parse_list(field, values, parse)?;
    let mut first_index: std::collections::HashMap<&T, usize> = std::collections::HashMap::with_capacity(parsed.len());
    for (index, item) in parsed.iter().enumerate() {
        if let Some(first) = first_index.insert(item, index) {
            return Err(InvalidField::new(
                format!("{field}[{index}]"),
                &values[index],
                format!("duplicate of {field}[{first}] ({item})"),
            ));
        }
    }
    Ok(parsed)
}
