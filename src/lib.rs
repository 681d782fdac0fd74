#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod common;
mod sys;

mod dir;
pub mod net;
pub mod serial;

#[cfg(feature = "rstest")]
pub mod fixtures;

pub use dir::IsolatedDir;
pub use net::{EphemeralTcp, EphemeralUdp};
pub use serial::SerialGuard;

#[cfg(feature = "macros")]
pub use isofix_macros::serial_group;

/// Not public API: what `#[serial_group]` expands to. May change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::serial::private::*;
}

/// The guides in `docs/`, compiled and run as doc tests so their examples stay true.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../docs/ports.md")]
    struct Ports;
    #[doc = include_str!("../docs/dirs.md")]
    struct Dirs;
}
