//! Handing a std socket to tokio: the check for a runtime that comes first, and the steps.

use std::fmt::Display;
use std::io::{self, ErrorKind};

use crate::common::error::{error, Context};

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

/// Hands a std socket to tokio, failing with errors that name `what`: checks that a runtime
/// is running, takes the socket from `socket` (the guard's own, or a clone of it), makes it
/// nonblocking and registers it with `from_std`, the tokio type's constructor.
pub(crate) fn hand_over<S, T, W: Display>(
    what: impl Fn() -> W,
    socket: impl FnOnce() -> io::Result<S>,
    set_nonblocking: impl FnOnce(&S) -> io::Result<()>,
    from_std: impl FnOnce(S) -> io::Result<T>,
) -> io::Result<T> {
    require_runtime(&what)?;
    let socket = socket().context(&what, "")?;
    set_nonblocking(&socket).context(&what, "tokio needs nonblocking sockets")?;
    from_std(socket).context(what, "is the tokio runtime built with enable_io()?")
}
