/// STUB (issue 2): a private temp dir removed on drop.
pub struct IsolatedDir;
