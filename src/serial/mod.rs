//! STUB (issue 3): cross-process named locks.

/// STUB.
pub struct SerialGuard;

#[doc(hidden)]
pub mod private {}
