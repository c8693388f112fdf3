use super::*;

const DOCUMENT: &str = r#"
schema: domainsec.config/v1
organization: Contoso
transport:
  tls_send_domain_secure_list: [woodgrovebank.com, "*.fabrikam.com"]
  tls_receive_domain_secure_list: [WoodGroveBank.com]
accepted_domains: [contoso.com, "*.mail.contoso.com"]
edges:
- {name: mail2, fqdn: mail2.contoso.com}
- {name: mail1, fqdn: mail1.contoso.com}
send_connectors:
- name: Internet
  address_spaces: ["*"]
  domain_secure_enabled: true
  protocol_logging_level: verbose
  source_edges: [mail1, mail2]
receive_connectors:
- edge: mail2
  name: Inet
  bindings: ["0.0.0.0:25"]
  auth_mechanisms: [tls]
  domain_secure_enabled: true
  permission_groups: [anonymous-users, partners]
- edge: mail1
  name: Inet
  bindings: ["0.0.0.0:25"]
  auth_mechanisms: [tls]
  permission_groups: [anonymous-users, partners]
trusted_roots: []
"#;

fn parse(text: &str) -> Result<ConfigDocument, InvalidField> {
    ConfigDocument::from_yaml(text)
}

#[test]
fn a_document_parses_into_canonical_order_with_defaults() {
    let document = parse(DOCUMENT).unwrap();
    assert_eq!(document.organization, "Contoso");
    assert_eq!(document.transport.tls_receive_domain_secure_list[0].to_string(), "woodgrovebank.com");
    let edges: Vec<&str> = document.edges.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(edges, ["mail1", "mail2"], "keyed collections are sorted");
    assert_eq!(document.receive_connectors[0].edge.as_str(), "mail1");
    let secure: Vec<String> = document.transport.tls_send_domain_secure_list.iter().map(ToString::to_string).collect();
    assert_eq!(secure, ["woodgrovebank.com", "*.fabrikam.com"], "an ordered list keeps its order");
    assert_eq!(document.send_connectors[0].max_message_size, domainsec_model::MessageSize::DEFAULT);
    assert_eq!(document.receive_connectors[0].protocol_logging_level, domainsec_model::ProtocolLoggingLevel::None);
}

#[test]
fn export_then_parse_gives_the_same_document() {
    let document = parse(DOCUMENT).unwrap();
    let yaml = document.to_yaml("exported from config version 7");
    assert!(yaml.starts_with("# exported from config version 7\nschema: domainsec.config/v1\n"), "{yaml}");
    assert_eq!(parse(&yaml).unwrap(), document);
    assert_eq!(ConfigDocument::from_json(document.to_json()).unwrap(), document);
    assert!(differences(&document.to_json(), &parse(&yaml).unwrap().to_json()).is_empty());
}

#[test]
fn bad_values_are_named_by_their_path_in_the_document() {
    let cases = [
        (
            "[woodgrovebank.com, \"*.fabrikam.com\"]",
            "[woodgrovebank.com, woodgrove..com]",
            "transport.tls_send_domain_secure_list[1]",
            "empty label",
        ),
        (
            "source_edges: [mail1, mail2]",
            "source_edges: [mail1, mail9]",
            "send_connectors[0].source_edges[1]",
            "not one of this document's edges",
        ),
        ("- edge: mail2", "- edge: mail9", "receive_connectors[0].edge", "not one of this document's edges"),
        (
            "protocol_logging_level: verbose",
            "protocol_logging_level: loud",
            "send_connectors[0].protocol_logging_level",
            "expected one of: none, verbose",
        ),
        (
            "  auth_mechanisms: [tls]\n  domain_secure_enabled: true",
            "  auth_mechanisms: [none]\n  domain_secure_enabled: true",
            "receive_connectors[0].domain_secure_enabled",
            "needs 'tls'",
        ),
        (
            "- {name: mail1, fqdn: mail1.contoso.com}",
            "- {name: mail2, fqdn: mail1.contoso.com}",
            "edges[1].name",
            "duplicate of edges[0]",
        ),
        (
            "schema: domainsec.config/v1",
            "schema: domainsec.config/v0",
            "schema",
            "applies domainsec.config/v1 documents only",
        ),
    ];
    for (from, to, field, rule) in cases {
        assert!(DOCUMENT.contains(from), "{from}");
        let error = parse(&DOCUMENT.replacen(from, to, 1)).unwrap_err();
        assert_eq!(error.field, field, "{error}");
        assert!(error.rule.contains(rule), "{error}");
    }
}

#[test]
fn unknown_fields_and_missing_sections_are_refused() {
    let error = parse(&DOCUMENT.replace(
        "  domain_secure_enabled: true\n  protocol_logging_level: verbose",
        "  colour: blue\n  protocol_logging_level: verbose",
    ))
    .unwrap_err();
    assert_eq!(error.field, "document");
    assert!(error.rule.contains("send_connectors[0]: unknown field `colour`"), "{error}");
    let error = parse(&DOCUMENT.replace("trusted_roots: []\n", "")).unwrap_err();
    assert!(error.rule.contains("missing field `trusted_roots`"), "{error}");
    let error = parse("schema: [").unwrap_err();
    assert_eq!(error.field, "document");
}

#[test]
fn a_trusted_root_must_be_one_ca_certificate() {
    let error =
        parse(&DOCUMENT.replace("trusted_roots: []", "trusted_roots:\n- certificate_pem: nonsense")).unwrap_err();
    assert_eq!(error.field, "trusted_roots[0].certificate_pem");
}

/// A YAML "billion laughs" (aliases of aliases, 10^9 strings if expanded) inside a field
/// that takes a list is refused at once: a typed document never expands it.
#[test]
fn an_alias_bomb_is_refused_without_expanding_it() {
    let mut levels = vec![String::from("&l0 [\"x.example\", \"y.example\"]")];
    for level in 1..10 {
        let refs = vec![format!("*l{}", level - 1); 10].join(", ");
        levels.push(format!("&l{level} [{refs}]"));
    }
    let bomb = format!(
        "schema: domainsec.config/v1\norganization: Contoso\ntransport:\n  tls_send_domain_secure_list: [{}]\n",
        levels.join(", ")
    );
    let started = std::time::Instant::now();
    let error = ConfigDocument::from_yaml(&bomb).expect_err("an alias bomb must not parse into a document");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "refused quickly: {:?}", started.elapsed());
    assert!(error.to_string().contains("transport"), "{error}");
}
