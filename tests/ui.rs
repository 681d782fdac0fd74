//! Compile errors of `#[serial_group]`: each case in `tests/ui/` must fail to compile with
//! exactly the message in its `.stderr` (regenerate with `TRYBUILD=overwrite` and review).

#[test]
fn serial_group_rejects_bad_arguments() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
