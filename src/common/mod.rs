//! Plumbing shared by every guard: error context, the current test's name, the private
//! per-user state directories, kernel-released file locks and random names. One place, so
//! that the guards agree on names, paths and messages.

pub(crate) mod error;
pub(crate) mod file_lock;
pub(crate) mod private_dir;
pub(crate) mod random;
pub(crate) mod test_name;
