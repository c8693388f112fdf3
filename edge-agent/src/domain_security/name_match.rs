//! The paper's certificate name matching, exactly. For a domain
//! `woodgrovebank.com` a certificate matches when one of its DNS names is the
//! domain itself, the wildcard `*.woodgrovebank.com`, or a name one node deeper
//! (`mail1.woodgrovebank.com`); two nodes deeper does not match. The DNS names are
//! the subject alternative names, or the subject CN only when there is no DNS
//! SAN; a CN with non-ASCII characters is never taken as a host name.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::x509::dns_names;

/// The names a certificate offers for matching, lower-case, without a trailing
/// dot: its DNS SANs, or — only when it has no SAN extension at all — its subject
/// CN (RFC 6125 §6.4.4; a certificate with SANs of other kinds offers no CN).
pub fn certificate_names(certificate: &X509Certificate<'_>) -> Vec<String> {
    let sans = dns_names(certificate);
    let names = if !has_subject_alternative_names(certificate) {
        certificate
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .filter(|cn| cn.is_ascii())
            .map(str::to_owned)
            .collect()
    } else {
        sans
    };
    names.into_iter().map(|n| n.trim_end_matches('.').to_ascii_lowercase()).collect()
}

/// True when the certificate carries a subjectAltName extension (of any kind; an
/// unreadable or duplicated one counts as present, so it never opens the CN).
pub fn has_subject_alternative_names(certificate: &X509Certificate<'_>) -> bool {
    !matches!(certificate.subject_alternative_name(), Ok(None))
}

/// True when the CA certificate `der` carries a nameConstraints extension (an
/// unreadable certificate counts as constrained: its CN is not trusted either).
pub fn has_name_constraints(der: &[u8]) -> bool {
    match X509Certificate::from_der(der) {
        Ok((_, certificate)) => !matches!(certificate.name_constraints(), Ok(None)),
        Err(_) => true,
    }
}

/// True when any of `names` matches `domain` by the paper's rule.
pub fn matches_domain(names: &[String], domain: &str) -> bool {
    names.iter().any(|name| name_matches(name, domain))
}

/// One name against one domain: equal, `*.domain`, or exactly one LDH label under it.
pub fn name_matches(name: &str, domain: &str) -> bool {
    if !name.is_ascii() || !domain.is_ascii() {
        return false;
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() || domain.is_empty() {
        return false;
    }
    if name == domain {
        return true;
    }
    let Some(label) = name.strip_suffix(&domain).and_then(|rest| rest.strip_suffix('.')) else {
        return false;
    };
    label == "*" || is_host_label(label)
}

/// A single LDH label: letters, digits, hyphens, not at the edges, 1–63 octets.
fn is_host_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "woodgrovebank.com";

    #[test]
    fn the_papers_three_matching_forms() {
        assert!(name_matches("woodgrovebank.com", DOMAIN), "the domain itself");
        assert!(name_matches("*.woodgrovebank.com", DOMAIN), "the wildcard");
        assert!(name_matches("mail1.woodgrovebank.com", DOMAIN), "one node deeper");
    }

    #[test]
    fn two_nodes_deeper_does_not_match() {
        assert!(!name_matches("mail1.us.woodgrovebank.com", DOMAIN));
        assert!(!name_matches("*.us.woodgrovebank.com", DOMAIN));
    }

    #[test]
    fn other_domains_and_look_alikes_do_not_match() {
        for name in [
            "woodgrovebank.net",
            "evilwoodgrovebank.com",
            "mail1.evilwoodgrovebank.com",
            "woodgrovebank.com.evil.com",
            "com",
            "*.com",
            "*",
            "",
            ".woodgrovebank.com",
            "mail*.woodgrovebank.com",
            "*mail.woodgrovebank.com",
            "-mail.woodgrovebank.com",
            "mail-.woodgrovebank.com",
            "mail_1.woodgrovebank.com",
        ] {
            assert!(!name_matches(name, DOMAIN), "{name:?} must not match");
        }
    }

    #[test]
    fn comparison_ignores_case_and_a_trailing_dot() {
        assert!(name_matches("MAIL1.WoodgroveBank.COM", DOMAIN));
        assert!(name_matches("mail1.woodgrovebank.com.", "WOODGROVEBANK.COM."));
        assert!(name_matches("*.WOODGROVEBANK.com", DOMAIN));
    }

    #[test]
    fn non_ascii_names_never_match() {
        assert!(!name_matches("mäil.woodgrovebank.com", DOMAIN));
        assert!(!name_matches("woodgrovebank.com", "wöodgrovebank.com"));
        // A-labels are plain ASCII and compare as such.
        assert!(name_matches("xn--mil-via.woodgrovebank.com", DOMAIN));
    }

    #[test]
    fn a_subdomain_is_matched_against_its_own_name() {
        // us.woodgrovebank.com on the list (as *.woodgrovebank.com): its own rules apply.
        assert!(name_matches("mail1.us.woodgrovebank.com", "us.woodgrovebank.com"));
        assert!(!name_matches("mail1.woodgrovebank.com", "us.woodgrovebank.com"));
    }

    fn certificate(names: &[&str], cn: &str) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn names_of(der: &[u8]) -> Vec<String> {
        let (_, parsed) = x509_parser::parse_x509_certificate(der).unwrap();
        certificate_names(&parsed)
    }

    #[test]
    fn sans_win_over_the_common_name() {
        let der = certificate(&["mail1.woodgrovebank.com"], "woodgrovebank.net");
        assert_eq!(names_of(&der), vec!["mail1.woodgrovebank.com".to_owned()]);
        assert!(matches_domain(&names_of(&der), DOMAIN));
        let der = certificate(&["mail.fabrikam.com"], "mail1.woodgrovebank.com");
        assert!(!matches_domain(&names_of(&der), DOMAIN), "the CN is ignored when a DNS SAN exists");
    }

    #[test]
    fn the_common_name_counts_only_without_sans_and_only_in_ascii() {
        let der = certificate(&[], "Mail1.WoodgroveBank.com");
        assert_eq!(names_of(&der), vec!["mail1.woodgrovebank.com".to_owned()]);
        assert!(matches_domain(&names_of(&der), DOMAIN));
        let der = certificate(&[], "mäil.woodgrovebank.com");
        assert!(names_of(&der).is_empty(), "a non-ASCII CN is not a host name");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::name_matches;

        fn label() -> impl Strategy<Value = String> {
            "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
        }

        fn domain() -> impl Strategy<Value = String> {
            proptest::collection::vec(label(), 2..4).prop_map(|labels| labels.join("."))
        }

        /// Upper-cases the characters where `mask` has a set bit.
        fn mixed_case(text: &str, mask: u64) -> String {
            text.chars()
                .enumerate()
                .map(|(i, c)| if mask >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                .collect()
        }

        proptest! {
            #[test]
            fn the_three_forms_match_in_any_case_with_or_without_a_trailing_dot(
                domain in domain(), host in label(), mask in any::<u64>(), dot in any::<bool>(),
            ) {
                let dot = if dot { "." } else { "" };
                for name in [domain.clone(), format!("*.{domain}"), format!("{host}.{domain}")] {
                    let shown = format!("{}{dot}", mixed_case(&name, mask));
                    prop_assert!(name_matches(&shown, &domain), "{shown} should match {domain}");
                    prop_assert!(name_matches(&name, &mixed_case(&domain, !mask)));
                }
            }

            #[test]
            fn two_nodes_deeper_a_deeper_wildcard_and_lookalikes_never_match(
                domain in domain(), a in label(), b in label(), prefix in "[a-z0-9-]{1,6}",
            ) {
                let name = format!("{a}.{b}.{domain}");
                prop_assert!(!name_matches(&name, &domain), "{name}");
                let name = format!("*.{a}.{domain}");
                prop_assert!(!name_matches(&name, &domain), "{name}");
                let name = format!("{a}.*.{domain}");
                prop_assert!(!name_matches(&name, &domain), "{name}");
                let name = format!("{prefix}{domain}");
                prop_assert!(!name_matches(&name, &domain), "{name}");
                let name = format!("{a}*.{domain}");
                prop_assert!(!name_matches(&name, &domain), "{name}");
            }

            #[test]
            fn non_ascii_names_and_domains_never_match(domain in domain(), host in "[a-z]{1,4}[äöüß][a-z]{0,4}") {
                let name = format!("{host}.{domain}");
                prop_assert!(!name_matches(&name, &domain), "{name}");
                let other = format!("{host}.{domain}");
                prop_assert!(!name_matches(&domain, &other));
            }
        }
    }
}
