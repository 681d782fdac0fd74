//! Plumbing shared by every guard: error context, the current test's name, the private
//! per-user state directories and kernel-released file locks. One place, so that the
//! guards agree on names, paths and messages.

pub(crate) mod error;
pub(crate) mod file_lock;
pub(crate) mod private_dir;
pub(crate) mod test_name;
