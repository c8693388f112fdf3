//! Configuration history on the wire: audit details, exported documents, apply results.

use proto::admin as pb;

use crate::{
    directory::{Applied, AuditDetail},
    document::{ConfigDocument, Difference},
};

/// Encodes an audit entry with its differences.
pub fn audit_detail(detail: &AuditDetail) -> pb::AuditEntryDetail {
    pb::AuditEntryDetail {
        entry: Some(super::audit_entry(&detail.entry)),
        differences: detail.differences.iter().map(difference).collect(),
    }
}

/// Encodes an exported document as YAML and JSON.
pub fn exported(document: &ConfigDocument, version: u64) -> pb::ExportConfigResponse {
    let header = format!(
        "DomainSec configuration of organization {}, config version {version}.\n\
         Apply with `dsctl config apply -f FILE` (--dry-run to compare first).",
        document.organization
    );
    pb::ExportConfigResponse {
        document_yaml: document.to_yaml(&header),
        document_json: serde_json::to_string_pretty(&document.to_json()).unwrap_or_default(),
        config_version: version,
    }
}

/// Encodes what an apply or a rollback did.
pub fn applied(applied: Applied) -> pb::ApplyConfigResponse {
    pb::ApplyConfigResponse {
        differences: applied.differences.iter().map(difference).collect(),
        written: applied.written,
        config_version: applied.config_version,
        audit_id: applied.audit_id.unwrap_or_default(),
    }
}

fn difference(difference: &Difference) -> pb::ConfigDifference {
    pb::ConfigDifference {
        path: difference.path.clone(),
        removed: difference.removed.clone(),
        added: difference.added.clone(),
    }
}
