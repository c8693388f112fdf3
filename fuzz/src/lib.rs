//! What several fuzz targets share: the paper's Contoso edge configuration, the
//! partner-domain test the Domain Security invariants use, and scratch
//! directories on tmpfs.
//!
//! # Layout
//! - `fuzz_targets/`: one libFuzzer target per file, each opening with the
//!   invariant it checks (see README.md).
//! - `corpus/`, `dict/`: seed inputs and dictionaries, committed.
//! - [`headers`]: an independent reader of header sections for the forged-mark
//!   invariants.

pub mod headers;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use domainsec_model::Binding;
use edge::apply::{self, EdgeConfig};
use proto::edge as pb;

/// The partner on the receive secure list (as `*.woodgrovebank.com` and `woodgrovebank.com`).
pub const PARTNER: &str = "woodgrovebank.com";

/// True for the partner's domain or one under it, however a peer spells it (any
/// ASCII case, trailing dots).
pub fn is_partner(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    domain == PARTNER || domain.ends_with(&format!(".{PARTNER}"))
}

/// The paper's Contoso edge `mail1.contoso.com`, built through the edge's own
/// snapshot check (so the fixture follows the configuration type as it grows):
/// accepted domain contoso.com; receive connector `Inet` on 127.0.0.1:25 with
/// Domain Security enabled, STARTTLS offered, permission groups `anonymous-users`
/// and `partners`, 64 KiB messages; receive secure list `*.woodgrovebank.com`,
/// `woodgrovebank.com`; no trusted roots.
pub fn contoso_config() -> EdgeConfig {
    let words = |list: &[&str]| list.iter().map(|word| (*word).to_owned()).collect::<Vec<_>>();
    let snapshot = pb::Snapshot {
        version: 1,
        organization: "Contoso".into(),
        edge: Some(pb::EdgeIdentity { name: "mail1".into(), fqdn: "mail1.contoso.com".into() }),
        transport_config: Some(pb::TransportConfig {
            tls_send_domain_secure_list: words(&[PARTNER]),
            tls_receive_domain_secure_list: words(&["*.woodgrovebank.com", PARTNER]),
            ..Default::default()
        }),
        accepted_domains: words(&["contoso.com"]),
        receive_connectors: vec![pb::ReceiveConnector {
            name: "Inet".into(),
            bindings: words(&["127.0.0.1:25"]),
            auth_mechanisms: words(&["tls"]),
            domain_secure_enabled: true,
            permission_groups: words(&["anonymous-users", "partners"]),
            protocol_logging_level: "none".into(),
            max_message_size: 64 * 1024,
            ..Default::default()
        }],
        ..Default::default()
    };
    let listening: HashSet<_> = [Binding::parse("127.0.0.1:25").expect("binding").socket_addr()].into();
    apply::check_with(&snapshot, &listening).expect("the Contoso snapshot applies")
}

/// A directory for this process's scratch files: under `DOMAINSEC_FUZZ_SCRATCH`
/// when set (`run.sh` sets it and removes it afterwards), else on tmpfs where
/// there is one.
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = match std::env::var_os("DOMAINSEC_FUZZ_SCRATCH") {
        Some(dir) => PathBuf::from(dir),
        None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    };
    let dir = base.join(format!("domainsec-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// Empties a spool's directories between runs.
pub fn clear_spool(spool: &Path) {
    for dir in ["tmp", "msg", "state", "corrupt"] {
        if let Ok(entries) = std::fs::read_dir(spool.join(dir)) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
