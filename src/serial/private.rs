//! What `#[serial_group]` expands to. Not public API.

use std::future::Future;
use std::panic::Location;

use super::{SerialBuilder, SerialGuard};

/// A builder for `groups`, for the attribute to add its options to; its messages speak
/// of the attribute (`timeout = N`).
pub fn serial_builder(groups: &[&str]) -> SerialBuilder {
    groups
        .iter()
        .fold(SerialBuilder::empty(), |b, g| b.group(*g))
        .for_attribute()
}

/// Acquires, or fails the test with the error's message, reported at the test. The guard
/// is a hygienic local of a sync function, which user code cannot name or move: requests
/// of this thread nest on it while it lives.
#[track_caller]
pub fn enter(builder: SerialBuilder) -> SerialGuard {
    match builder.acquire_frame() {
        Ok(guard) => guard,
        Err(err) => panic!("{err}"),
    }
}

/// [`enter`] for async tests. The error's message names the test's location, which a
/// panic inside the future cannot (`#[track_caller]` does not reach into async code).
#[track_caller]
pub fn enter_async(builder: SerialBuilder) -> impl Future<Output = SerialGuard> + Send + 'static {
    let caller = Location::caller();
    let acquiring = builder.acquire_async();
    async move {
        acquiring
            .await
            .unwrap_or_else(|err| panic!("{err} (#[serial_group] at {caller})"))
    }
}
