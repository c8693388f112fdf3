//! Envelope addresses (RFC 5321 §4.1.2): parsed once at the SMTP boundary.

use std::fmt;

/// A mailbox `local@domain`. The domain is kept lower-case (DNS names are
/// case-insensitive); the local part is kept as sent (RFC 5321 §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    local: String,
    domain: String,
}

/// Why an address is refused; the text goes into the `501` reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// No `@`, or nothing on one side of it.
    #[error("address must be local-part@domain")]
    Shape,
    /// Local part over 64 octets (RFC 5321 §4.5.3.1.1).
    #[error("local part longer than 64 octets")]
    LocalTooLong,
    /// Domain over 255 octets, or the whole path over 256.
    #[error("address longer than 256 octets")]
    TooLong,
    /// A character the grammar does not allow.
    #[error("character {0:?} not allowed in an address")]
    Character(char),
    /// A domain that is not a host name or an address literal.
    #[error("domain {0:?} is not a valid host name or address literal")]
    Domain(String),
}

impl Mailbox {
    /// Parses `local@domain` (without angle brackets).
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        if input.len() > 254 {
            return Err(AddressError::TooLong);
        }
        let at = input.rfind('@').ok_or(AddressError::Shape)?;
        let (local, domain) = (&input[..at], &input[at + 1..]);
        if local.is_empty() || domain.is_empty() {
            return Err(AddressError::Shape);
        }
        if local.len() > 64 {
            return Err(AddressError::LocalTooLong);
        }
        check_local(local)?;
        check_domain(domain)?;
        Ok(Self { local: local.to_owned(), domain: domain.to_ascii_lowercase() })
    }

    /// The part before `@`.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, lower-case.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Dot-atom or quoted string (RFC 5321 `Local-part`).
fn check_local(local: &str) -> Result<(), AddressError> {
    if let Some(quoted) = local.strip_prefix('"') {
        let inner = quoted.strip_suffix('"').ok_or(AddressError::Character('"'))?;
        let mut escaped = false;
        for c in inner.chars() {
            match (escaped, c) {
                (_, c) if !(' '..='~').contains(&c) => return Err(AddressError::Character(c)),
                (false, '\\') => escaped = true,
                (false, '"') => return Err(AddressError::Character('"')),
                _ => escaped = false,
            }
        }
        return if escaped { Err(AddressError::Character('\\')) } else { Ok(()) };
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(AddressError::Character('.'));
    }
    match local.chars().find(|c| !(c.is_ascii_alphanumeric() || ".!#$%&'*+-/=?^_`{|}~".contains(*c))) {
        Some(c) => Err(AddressError::Character(c)),
        None => Ok(()),
    }
}

/// A host name of LDH labels, or an address literal `[192.0.2.1]` / `[IPv6:...]`.
fn check_domain(domain: &str) -> Result<(), AddressError> {
    let bad = || AddressError::Domain(domain.to_owned());
    if let Some(literal) = domain.strip_prefix('[') {
        let literal = literal.strip_suffix(']').ok_or_else(bad)?;
        let parsed = match literal.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => literal[5..].parse::<std::net::Ipv6Addr>().is_ok(),
            _ => literal.parse::<std::net::Ipv4Addr>().is_ok(),
        };
        return if parsed { Ok(()) } else { Err(bad()) };
    }
    if domain.len() > 253 {
        return Err(AddressError::TooLong);
    }
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if domain.split('.').all(valid_label) { Ok(()) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dot_atoms_and_quoted_local_parts() {
        let mailbox = Mailbox::parse("Kim.Akers+tag@Contoso.COM").unwrap();
        assert_eq!((mailbox.local(), mailbox.domain()), ("Kim.Akers+tag", "contoso.com"));
        assert!(Mailbox::parse("\"kim akers\"@contoso.com").is_ok());
        assert!(Mailbox::parse("postmaster@[192.0.2.1]").is_ok());
        assert!(Mailbox::parse("postmaster@[IPv6:::1]").is_ok());
    }

    #[test]
    fn refuses_malformed_addresses() {
        for (input, error) in [
            ("kim", AddressError::Shape),
            ("@contoso.com", AddressError::Shape),
            ("kim@", AddressError::Shape),
            ("kim..akers@contoso.com", AddressError::Character('.')),
            ("kim akers@contoso.com", AddressError::Character(' ')),
            ("kim@-contoso.com", AddressError::Domain("-contoso.com".into())),
            ("kim@contoso..com", AddressError::Domain("contoso..com".into())),
            ("kim@[300.1.1.1]", AddressError::Domain("[300.1.1.1]".into())),
            ("\"kim@contoso.com", AddressError::Character('"')),
        ] {
            assert_eq!(Mailbox::parse(input), Err(error), "{input}");
        }
        assert_eq!(Mailbox::parse(&format!("{}@contoso.com", "a".repeat(65))), Err(AddressError::LocalTooLong));
    }
}
