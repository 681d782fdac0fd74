//! Child processes that never outlive their test: [`ChildGuard`].

#[cfg(feature = "tokio")]
mod async_wait;
mod builder;
mod guard;
mod output;
mod spawner;

pub use builder::ChildGuardBuilder;
pub use guard::ChildGuard;
