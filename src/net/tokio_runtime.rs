//! The check that comes before handing a socket to tokio.

use std::fmt::Display;
use std::io::{self, ErrorKind};

use crate::common::error::error;

/// Fails unless a tokio runtime is running on this thread. tokio's `from_std` constructors
/// panic without one; a test should get an error that says what to do instead.
pub(crate) fn require_runtime<W: Display>(what: impl FnOnce() -> W) -> io::Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(error(
            ErrorKind::Other,
            format_args!("{}: no tokio runtime is running on this thread", what()),
            "do it inside #[tokio::test], #[tokio::main] or Runtime::block_on",
        )),
    }
}
