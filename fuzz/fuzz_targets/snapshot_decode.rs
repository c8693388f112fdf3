//! Fuzzes what crosses the edge port as protobuf: `prost::Message::decode` of the
//! messages an edge receives from its controller (`ControllerMessage`, its
//! `Snapshot`, `SubscribeResponse`) and of the messages the controller receives
//! from edges (`EdgeMessage`: hello, ack, nack, heartbeat, certificate result),
//! then the edge's own check of a snapshot, `edge::apply::check_with`.
//!
//! The first input byte picks the message type (0 `Snapshot`, 1
//! `ControllerMessage`, 2 `EdgeMessage`, 3 `SubscribeResponse`); the rest is the
//! encoded message. Receive-connector bindings are passed as already listened
//! on, so the check binds no socket.
//!
//! INVARIANT:
//! - decoding never panics, and a decoded message re-encodes to bytes that decode
//!   to an equal message;
//! - `section_digests` never panics and is deterministic;
//! - `apply::check_with` never panics; an `Ok` configuration has the snapshot's
//!   version, and one parsed entry per accepted domain, send connector, receive
//!   connector (with one binding per binding string) and trusted root.
#![no_main]

use std::{collections::HashSet, net::SocketAddr};

use domainsec_model::Binding;
use edge::apply;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::edge as pb;

fuzz_target!(|data: &[u8]| {
    let Some((kind, bytes)) = data.split_first() else { return };
    match kind % 4 {
        0 => {
            if let Some(snapshot) = decode::<pb::Snapshot>(bytes) {
                check(&snapshot);
            }
        }
        1 => {
            if let Some(pb::ControllerMessage { kind: Some(pb::controller_message::Kind::Snapshot(snapshot)) }) =
                decode::<pb::ControllerMessage>(bytes)
            {
                check(&snapshot);
            }
        }
        2 => {
            decode::<pb::EdgeMessage>(bytes);
        }
        _ => {
            decode::<pb::SubscribeResponse>(bytes);
        }
    }
});

/// Decodes, and checks that the message survives a re-encoding.
fn decode<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    let again = M::decode(message.encode_to_vec().as_slice());
    assert_eq!(again.as_ref().ok(), Some(&message), "re-encoding changed the message");
    Some(message)
}

fn check(snapshot: &pb::Snapshot) {
    let digests = pb::section_digests(snapshot);
    assert_eq!(digests, pb::section_digests(snapshot), "section digests are not deterministic");
    let listening: HashSet<SocketAddr> = snapshot
        .receive_connectors
        .iter()
        .flat_map(|connector| &connector.bindings)
        .filter_map(|binding| Binding::parse(binding).ok())
        .map(|binding| binding.socket_addr())
        .collect();
    let Ok(config) = apply::check_with(snapshot, &listening) else { return };
    assert_eq!(config.version, snapshot.version, "version");
    assert_eq!(config.accepted_domains.len(), snapshot.accepted_domains.len(), "accepted domains");
    assert_eq!(config.send_connectors.len(), snapshot.send_connectors.len(), "send connectors");
    assert_eq!(config.receive_connectors.len(), snapshot.receive_connectors.len(), "receive connectors");
    for (parsed, sent) in config.receive_connectors.iter().zip(&snapshot.receive_connectors) {
        assert_eq!(parsed.bindings.len(), sent.bindings.len(), "bindings of {}", sent.name);
    }
    assert_eq!(config.trusted_roots.len(), snapshot.trusted_roots.len(), "trusted roots");
}
