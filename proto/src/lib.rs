//! gRPC contracts of DomainSec, generated from the `.proto` files beside this crate.
//!
//! # Layout
//! - [`admin`]: the controller's admin API, spoken by `dsctl`.

/// The controller's admin API (`domainsec.admin.v1`).
pub mod admin {
    tonic::include_proto!("domainsec.admin.v1");
}
