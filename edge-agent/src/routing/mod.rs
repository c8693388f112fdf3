//! Where a recipient's mail goes next: send connector selection and DNS (MX) routing.

pub mod dns;
