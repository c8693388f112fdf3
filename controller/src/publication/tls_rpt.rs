//! The TLS-RPT record (RFC 8460 section 3): where sending MTAs send their daily
//! reports on TLS with this organization's MX hosts (DANE and MTA-STS failures).

use std::fmt;

use domainsec_model::{Domain, InvalidField};

/// A report destination: `mailto:` an address, or an `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportUri(String);

impl ReportUri {
    /// Parses one `rua` URI; the error names `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidField> {
        let refuse = |rule: &str| InvalidField::new(field, value, rule);
        if value.len() > MAX_URI_BYTES {
            return Err(refuse(&format!("longer than {MAX_URI_BYTES} bytes")));
        }
        // RFC 8460 section 3: commas and semicolons separate URIs and fields, so a URI
        // holding one must percent-encode it; quotes and spaces would break the record.
        if let Some(c) = value.chars().find(|c| !c.is_ascii_graphic() || matches!(c, ',' | ';' | '"' | '\\')) {
            return Err(refuse(&format!(
                "{c:?} is not allowed in a report URI (percent-encode ',' and ';', RFC 8460 section 3)"
            )));
        }
        let lower = value.to_ascii_lowercase();
        if let Some(address) = lower.strip_prefix("mailto:") {
            let address = address.split('?').next().unwrap_or_default();
            let (local, domain) = address.rsplit_once('@').unwrap_or(("", ""));
            if local.is_empty() || Domain::parse(domain).is_err() {
                return Err(refuse("a mailto: URI needs an address, e.g. mailto:tlsrpt@contoso.com"));
            }
        } else if let Some(rest) = lower.strip_prefix("https://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
            if Domain::parse(host).is_err() {
                return Err(refuse("an https: URI needs a host name, e.g. https://reports.contoso.com/tlsrpt"));
            }
        } else {
            return Err(refuse("must be a mailto: or https: URI (RFC 8460 section 3)"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The URI.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReportUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a request's `rua` list: 1 to [`MAX_URIS`] URIs, each named by its index.
pub fn parse_all(field: &str, values: &[String]) -> Result<Vec<ReportUri>, InvalidField> {
    if values.is_empty() {
        return Err(InvalidField::new(field, "", "give at least one mailto: or https: URI for the reports"));
    }
    if values.len() > MAX_URIS {
        return Err(InvalidField::new(field, "", format!("at most {MAX_URIS} URIs")));
    }
    values.iter().enumerate().map(|(i, v)| ReportUri::parse(&format!("{field}[{i}]"), v)).collect()
}

/// The `_smtp._tls` owner name of a domain.
pub fn owner(domain: &Domain) -> String {
    format!("_smtp._tls.{}.", domain.as_str())
}

/// `_smtp._tls.contoso.com. IN TXT "v=TLSRPTv1; rua=mailto:…"`.
pub fn txt_line(domain: &Domain, rua: &[ReportUri]) -> String {
    let uris: Vec<&str> = rua.iter().map(ReportUri::as_str).collect();
    format!("{} IN TXT {}", owner(domain), super::txt_strings(&format!("v=TLSRPTv1; rua={}", uris.join(","))))
}

/// Most URIs in one record.
pub const MAX_URIS: usize = 8;
const MAX_URI_BYTES: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(value: &str) -> String {
        ReportUri::parse("rua[0]", value).unwrap_err().to_string()
    }

    #[test]
    fn mailto_and_https_uris_make_the_record() {
        let rua = parse_all(
            "rua",
            &["mailto:tlsrpt@contoso.com".to_owned(), "https://reports.contoso.com:8443/tlsrpt".to_owned()],
        )
        .unwrap();
        let domain = Domain::parse("contoso.com").unwrap();
        assert_eq!(
            txt_line(&domain, &rua),
            "_smtp._tls.contoso.com. IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@contoso.com,https://reports.contoso.com:8443/tlsrpt\""
        );
    }

    #[test]
    fn other_schemes_and_broken_uris_are_refused_by_field() {
        assert_eq!(
            refused("http://reports.contoso.com/"),
            "rua[0] \"http://reports.contoso.com/\": must be a mailto: or https: URI (RFC 8460 section 3)"
        );
        assert!(refused("tlsrpt@contoso.com").contains("must be a mailto: or https: URI"));
        assert!(refused("mailto:contoso.com").contains("needs an address"));
        assert!(refused("mailto:a@b.com,mailto:c@d.com").contains("',' is not allowed"));
        assert!(refused("mailto:a@b.com; x").contains("not allowed"));
        assert!(refused("https://").contains("needs a host name"));
        assert!(refused("https://bad host/").contains("not allowed"));
        assert_eq!(
            parse_all("rua", &[]).unwrap_err().to_string(),
            "rua: give at least one mailto: or https: URI for the reports"
        );
    }
}
