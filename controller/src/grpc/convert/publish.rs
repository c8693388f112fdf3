//! Encoding the published records.

use proto::admin as pb;

use crate::directory::{MtaStsPublication, TlsaPublication, TxtRecord};

/// `publish tlsa`'s answer.
pub fn tlsa(publication: TlsaPublication) -> pb::PublishTlsaResponse {
    pb::PublishTlsaResponse {
        records: publication
            .records
            .into_iter()
            .map(|r| pb::TlsaRecord {
                edge: r.edge.to_string(),
                owner: r.owner,
                spki_sha256: r.spki_sha256.to_string(),
                thumbprint: r.thumbprint,
                next: r.next,
                not_after: r.not_after,
                line: r.line,
            })
            .collect(),
        notes: publication.notes,
    }
}

/// `publish mta-sts`'s answer.
pub fn mta_sts(publication: MtaStsPublication) -> pb::PublishMtaStsResponse {
    let policy = publication.policy;
    pb::PublishMtaStsResponse {
        mode: policy.mode,
        max_age_seconds: policy.max_age_seconds,
        id: policy.id,
        policy: policy.text,
        mx: publication.mx.iter().map(ToString::to_string).collect(),
        records: publication.records.iter().map(txt).collect(),
        changed: publication.changed,
        published_at: policy.published_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// One TXT record.
pub fn txt(record: &TxtRecord) -> pb::DnsRecord {
    pb::DnsRecord { domain: record.domain.to_string(), owner: record.owner.clone(), line: record.line.clone() }
}
