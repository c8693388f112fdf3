//! Exit codes a script can trust: 0 when everything asked for is done, and one
//! code per kind of other outcome, never 0 for a partial result. The README lists
//! them.

use std::process::ExitCode;

/// A result that is not a failure of the call itself but must not exit 0.
#[derive(Debug, thiserror::Error)]
pub enum Incomplete {
    /// Some edges run another configuration than the directory's (or NACKed it).
    #[error("{count} edge(s) not in sync: {edges}")]
    NotInSync { count: usize, edges: String },
    /// Edges that did not answer a push in time, or are not connected.
    #[error("{count} edge(s) did not ACK version {version} in time: {edges}")]
    NoAck { count: usize, edges: String, version: u64 },
    /// `partner test`: the partner would fail Domain Security.
    #[error("{domain} would fail Domain Security: {reply}")]
    PartnerFails { domain: String, reply: String },
    /// The edge had not run the task when the wait ended.
    #[error("task {task} still queued after {waited}; see it later with: dsctl cert task {task}")]
    StillQueued { task: String, waited: String },
}

/// 1: failed (the edge refused, the certificate did not verify, anything else).
pub const FAILED: u8 = 1;
/// 2: an argument is invalid (also clap's code for bad usage).
pub const INVALID_ARGUMENT: u8 = 2;
/// 3: edges not in sync, or a NACK.
pub const NOT_IN_SYNC: u8 = 3;
/// 4: timed out waiting (a task still queued, a deadline passed).
pub const TIMED_OUT: u8 = 4;
/// 5: permission denied, or a credential the controller does not accept.
pub const PERMISSION_DENIED: u8 = 5;
/// 6: the controller cannot be reached.
pub const UNREACHABLE: u8 = 6;

/// The exit code for an error `commands::run` returned.
pub fn code(error: &anyhow::Error) -> ExitCode {
    ExitCode::from(number(error))
}

fn number(error: &anyhow::Error) -> u8 {
    if let Some(incomplete) = error.downcast_ref::<Incomplete>() {
        return match incomplete {
            Incomplete::NotInSync { .. } => NOT_IN_SYNC,
            Incomplete::StillQueued { .. } | Incomplete::NoAck { .. } => TIMED_OUT,
            Incomplete::PartnerFails { .. } => FAILED,
        };
    }
    let Some(status) = error.downcast_ref::<tonic::Status>() else { return FAILED };
    match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => INVALID_ARGUMENT,
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => PERMISSION_DENIED,
        tonic::Code::DeadlineExceeded => TIMED_OUT,
        tonic::Code::Unavailable if super::commands::is_about_an_edge(status) => TIMED_OUT,
        tonic::Code::Unavailable => UNREACHABLE,
        _ => FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_outcome_has_its_own_code() {
        let status = |code| anyhow::Error::new(tonic::Status::new(code, "x"));
        assert_eq!(number(&status(tonic::Code::InvalidArgument)), INVALID_ARGUMENT);
        assert_eq!(number(&status(tonic::Code::PermissionDenied)), PERMISSION_DENIED);
        assert_eq!(number(&status(tonic::Code::Unauthenticated)), PERMISSION_DENIED);
        assert_eq!(number(&status(tonic::Code::Unavailable)), UNREACHABLE);
        assert_eq!(number(&status(tonic::Code::DeadlineExceeded)), TIMED_OUT);
        assert_eq!(number(&status(tonic::Code::FailedPrecondition)), FAILED);
        let not_in_sync = Incomplete::NotInSync { count: 1, edges: "mail2".into() };
        assert_eq!(number(&anyhow::Error::new(not_in_sync)), NOT_IN_SYNC);
        let queued = Incomplete::StillQueued { task: "t".into(), waited: "1m".into() };
        assert_eq!(number(&anyhow::Error::new(queued)), TIMED_OUT);
        assert_eq!(number(&anyhow::anyhow!("the certificate did not verify")), FAILED);
    }
}
