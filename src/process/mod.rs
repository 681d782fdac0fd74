//! Child processes that never outlive their test: [`ChildGuard`].

mod builder;
mod guard;
mod output;
mod spawner;

pub use builder::ChildGuardBuilder;
pub use guard::ChildGuard;
