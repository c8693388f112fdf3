//! Small helpers shared by the test modules.

use proto::admin as pb;
use tonic::{Code, Status};

/// Asserts a call failed with `code` and exactly `message`.
pub fn assert_status<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>, code: Code, message: &str) {
    let status = result.expect_err("the call should have been refused");
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    assert_eq!(status.message(), message);
}

/// Asserts a call failed with `code` and a message containing `part`.
pub fn assert_refused<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>, code: Code, part: &str) {
    let status = result.expect_err("the call should have been refused");
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    assert!(status.message().contains(part), "{:?} does not contain {part:?}", status.message());
}

/// A list for "replace" fields.
pub fn list(values: &[&str]) -> Option<pb::StringList> {
    Some(pb::StringList { values: values.iter().map(|v| (*v).to_owned()).collect() })
}

/// Strings from string slices.
pub fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// The paper's send connector `Internet`, sourced from `edges`.
pub fn internet_connector(edges: &[&str]) -> pb::SendConnectorSpec {
    pb::SendConnectorSpec {
        name: "Internet".to_owned(),
        address_spaces: strings(&["*"]),
        smart_hosts: vec![],
        fqdn: String::new(),
        domain_secure_enabled: true,
        protocol_logging_level: pb::ProtocolLoggingLevel::Verbose as i32,
        source_edges: strings(edges),
        max_message_size: 0,
        dane_disabled: false,
        mta_sts_disabled: false,
    }
}

/// The paper's receive connector `Inet` on `edge`.
pub fn inet_connector(edge: &str) -> pb::ReceiveConnectorSpec {
    pb::ReceiveConnectorSpec {
        edge: edge.to_owned(),
        name: "Inet".to_owned(),
        bindings: strings(&["0.0.0.0:25"]),
        remote_ip_ranges: vec![],
        fqdn: String::new(),
        auth_mechanisms: vec![pb::AuthMechanism::Tls as i32],
        domain_secure_enabled: true,
        permission_groups: vec![pb::PermissionGroup::AnonymousUsers as i32, pb::PermissionGroup::Partners as i32],
        protocol_logging_level: pb::ProtocolLoggingLevel::None as i32,
        max_message_size: 0,
    }
}

/// Records edges through the API.
pub async fn add_edges(
    client: &mut proto::admin::admin_client::AdminClient<tonic::transport::Channel>,
    names: &[&str],
) {
    for name in names {
        client
            .create_edge(pb::CreateEdgeRequest { name: (*name).to_owned(), fqdn: format!("{name}.contoso.com") })
            .await
            .unwrap();
    }
}
