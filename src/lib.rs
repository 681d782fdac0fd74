#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// On docs.rs, label each item gated by a feature with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod common;
mod sys;

mod dir;
pub mod net;
#[cfg(unix)]
mod process;
pub mod serial;
pub mod stress;

#[cfg(feature = "rstest")]
pub mod fixtures;

pub use dir::IsolatedDir;
#[cfg(feature = "tokio")]
pub use net::AsyncTestServer;
pub use net::{EphemeralTcp, EphemeralUdp, TestServer};
#[cfg(unix)]
pub use net::{EphemeralUnix, EphemeralUnixDatagram, ReservedPort};
#[cfg(unix)]
pub use process::{ChildGuard, ChildGuardBuilder};
pub use serial::SerialGuard;

/// Runs a function while holding named [`SerialGuard`] groups (feature `macros`).
///
/// ```
/// use isofix::serial_group;
///
/// #[serial_group("isofix-doc-example")]
/// fn bump(counter: &mut u32) -> u32 {
///     *counter += 1;
///     *counter
/// }
///
/// let mut counter = 0;
/// assert_eq!(bump(&mut counter), 1);
/// ```
///
/// See [docs/macros.md](https://github.com/isofix-rs/isofix/blob/main/docs/macros.md) for
/// every form and how it composes with `#[tokio::test]`, `#[rstest]` and `#[test_case]`.
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
    #[doc = include_str!("../docs/migrating.md")]
    struct Migrating;
    #[doc = include_str!("../docs/diagnosing-flakes.md")]
    struct DiagnosingFlakes;
    #[cfg(unix)]
    #[doc = include_str!("../docs/processes.md")]
    struct Processes;
}
