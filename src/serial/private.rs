//! What `#[serial_group]` expands to. Not public API.

use super::{SerialBuilder, SerialGuard};

/// A builder for `groups`, for the attribute to add its options to.
pub fn serial_builder(groups: &[&str]) -> SerialBuilder {
    groups
        .iter()
        .fold(SerialBuilder::empty(), |b, g| b.group(*g))
}

/// Acquires, or fails the test with the error's message.
pub fn enter(builder: SerialBuilder) -> SerialGuard {
    builder.acquire().unwrap_or_else(|err| panic!("{err}"))
}

/// [`enter`] for async tests.
pub async fn enter_async(builder: SerialBuilder) -> SerialGuard {
    builder
        .acquire_async()
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}
