//! The durable queue: the spool on disk and the scheduler that delivers from it.

pub mod spool;
