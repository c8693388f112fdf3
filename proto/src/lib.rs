//! gRPC contracts of DomainSec, generated from the `.proto` files beside this crate.
//!
//! # Layout
//! - [`admin`]: the controller's admin API, spoken by `dsctl`.
//! - [`edge`]: subscription and EdgeSync between the controller and edges.
//! - [`codec`]: the edge port's protobuf codec with small buffers.

pub mod codec;

/// The controller's admin API (`domainsec.admin.v1`).
pub mod admin {
    /// The longest a call may ask the controller to wait for edges
    /// (`SyncEdgesRequest.timeout_seconds`); more is `INVALID_ARGUMENT`.
    pub const MAX_WAIT_SECONDS: u32 = 300;

    /// The largest admin request the controller decodes: room for a configuration
    /// document (or a list replacement) with both secure-domain lists at their bound
    /// of 100,000 entries.
    pub const MAX_ADMIN_REQUEST_BYTES: usize = 16 * 1024 * 1024;

    tonic::include_proto!("domainsec.admin.v1");

    /// The response metadata key naming what an error status is about, so a
    /// client can choose its hint from it instead of from the message text.
    pub const ERROR_KIND_METADATA: &str = "domainsec-error-kind";

    /// [`ERROR_KIND_METADATA`] of an `UNAVAILABLE` that concerns an edge (not
    /// connected, or no answer in time), not the controller itself.
    pub const ERROR_KIND_EDGE_UNAVAILABLE: &str = "edge-unavailable";
}

/// Subscription and EdgeSync (`domainsec.edge.v1`).
pub mod edge {
    tonic::include_proto!("domainsec.edge.v1");

    use std::collections::BTreeMap;

    use prost::Message;

    /// The DNS name controllers put in their edge-port certificates (edges pin
    /// the certificate's hash; the name only fills SNI).
    pub const CONTROLLER_NAME: &str = "domainsec-controller";

    /// The server name an edge sends when it subscribes, so the controller knows to
    /// accept a client certificate it does not trust yet.
    pub const ENROLLMENT_SERVER_NAME: &str = "enroll.domainsec-controller";

    /// The largest message an edge sends on the sync stream (heartbeats, task
    /// results); both ends hold to it, and the edge trims a heartbeat that would
    /// not fit instead of breaking its stream.
    pub const MAX_EDGE_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

    /// The largest message the controller sends (a snapshot with long secure-domain
    /// lists, a certificate task).
    pub const MAX_CONTROLLER_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

    /// Metadata key on the `UNAVAILABLE` status with which a stopping controller
    /// releases an edge's stream: the edge connects to its next controller endpoint at
    /// once instead of after its backoff.
    pub const CONTROLLER_STOPPING_METADATA: &str = "domainsec-controller-stopping";

    impl QueueAction {
        /// The action as a word: the task name's suffix and the deprecated
        /// `QueueCommand.action` that older edges read.
        pub fn word(self) -> &'static str {
            match self {
                Self::Unspecified => "",
                Self::List => "list",
                Self::Retry => "retry",
                Self::Remove => "remove",
            }
        }
    }

    impl QueueCommand {
        /// A command for `action` on `message_id` (empty for list), both fields set.
        pub fn new(action: QueueAction, message_id: &str) -> Self {
            Self { action: action.word().to_owned(), message_id: message_id.to_owned(), kind: action.into() }
        }
    }

    /// A short digest of each section of a snapshot, so the controller can tell
    /// which parts of an edge's configuration differ (`dsctl edge test-sync`).
    /// Both sides compute it from the same protobuf encoding.
    pub fn section_digests(snapshot: &Snapshot) -> BTreeMap<String, String> {
        let sections = [
            ("edge", Snapshot { edge: snapshot.edge.clone(), ..Snapshot::default() }),
            (
                "transport_config",
                Snapshot { transport_config: snapshot.transport_config.clone(), ..Snapshot::default() },
            ),
            (
                "accepted_domains",
                Snapshot { accepted_domains: snapshot.accepted_domains.clone(), ..Snapshot::default() },
            ),
            ("send_connectors", Snapshot { send_connectors: snapshot.send_connectors.clone(), ..Snapshot::default() }),
            (
                "receive_connectors",
                Snapshot { receive_connectors: snapshot.receive_connectors.clone(), ..Snapshot::default() },
            ),
            ("trusted_roots", Snapshot { trusted_roots: snapshot.trusted_roots.clone(), ..Snapshot::default() }),
            (
                "organization_domains",
                Snapshot { organization_domains: snapshot.organization_domains.clone(), ..Snapshot::default() },
            ),
            (
                "controller_certificates",
                Snapshot { controller_certificates: snapshot.controller_certificates.clone(), ..Snapshot::default() },
            ),
        ];
        sections
            .into_iter()
            .map(|(name, section)| {
                let digest = ring::digest::digest(&ring::digest::SHA256, &section.encode_to_vec());
                let hex: String = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
                (name.to_owned(), hex)
            })
            .collect()
    }
}
