//! STUB (issue 4): rstest fixtures.
