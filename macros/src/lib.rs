//! The `#[serial_group]` attribute of [isofix](https://docs.rs/isofix).
//!
//! Use it as `isofix::serial_group` (the `macros` feature of isofix, on by default); this
//! crate only turns the attribute into a call to isofix's runtime and is not meant to be
//! used on its own. It depends on nothing but `proc_macro`, so that it adds as little as
//! possible to a test suite's build.

mod args;
mod error;
mod expand;
mod item;

use proc_macro::TokenStream;

/// Runs the function while holding named cross-process locks ("groups"), so that tests
/// which touch the same shared thing (a fixed port, a database, a global file) never run
/// at the same time, in the same process (`cargo test`) or in different ones
/// (`cargo nextest run`). Tests that name other groups, or none, keep running in parallel.
///
/// The groups are taken as the first statement of the function's body and held until the
/// body ends: through `return`, `?` and the function's final expression, and released if
/// the body panics. The function's signature, generics and other attributes are kept as
/// written.
///
/// # Forms
///
/// - `#[serial_group("ws")]`: one test at a time among all that name `"ws"`.
/// - `#[serial_group("ws", "db")]`: several groups, taken together in one canonical order,
///   so that tests naming them in different orders cannot deadlock.
/// - `#[serial_group("db", shared)]`: any number of `shared` holders run together, while
///   an exclusive holder of `"db"` waits for all of them (a reader/writer lock).
/// - `#[serial_group("heavy", max = 4)]`: at most four holders at once.
/// - `timeout = 30` (after the names): give up after waiting 30 seconds, failing the test
///   with a message naming the group, instead of waiting for as long as it takes.
/// - `crate = "path::to::isofix"`: where to find isofix when it is not `::isofix`: a
///   renamed dependency (`iso = { package = "isofix", .. }` takes `crate = "::iso"`) or a
///   re-export by another crate.
///
/// Group names are string literals. Arguments that are wrong (an empty or non-literal
/// name, `max = 0`, an unknown or repeated option, a group named twice) are compile errors
/// that point at the offending argument.
///
/// # Composition
///
/// The attribute works above or below `#[test]`, `#[tokio::test]` (either flavor),
/// `#[rstest]` (with `#[case]`, `#[values]` and fixtures) and `#[test_case]`, and on plain
/// functions and methods. Next to a runtime attribute (`#[tokio::test]`, `#[sqlx::test]`,
/// `#[test_log::test]`: any path of two segments or more ending in `test`) the groups are
/// taken before the runtime is built and released after it is dropped, with the tasks
/// the test left running: above such an attribute, `#[serial_group]` moves itself beneath
/// it. On an `async fn` with no runtime attribute (a helper or method), the groups are
/// awaited without blocking the runtime's thread. Two `#[serial_group]` attributes on one
/// function are merged into one acquisition; they must then agree on the mode (`shared`,
/// `max` or neither).
///
/// A function that is not `async` but returns a future (as `#[async_trait]` methods do)
/// holds the groups only while it builds the future, not while the future runs.
///
/// # Example
///
/// Not compiled here, since this crate cannot depend on isofix; the same code is compiled
/// and run in isofix's `tests/serial_group_*.rs`, and `docs/macros.md` of isofix lists
/// every supported combination.
///
/// ```ignore
/// use isofix::serial_group;
///
/// #[test]
/// #[serial_group("fixed-port-8080")]
/// fn serves_on_the_fixed_port() {
///     // No other test naming "fixed-port-8080" runs meanwhile, in any process.
/// }
///
/// #[tokio::test]
/// #[serial_group("db", shared, timeout = 30)]
/// async fn reads_the_database() {
///     // Runs alongside other `shared` holders of "db", never beside an exclusive one.
/// }
/// ```
#[proc_macro_attribute]
pub fn serial_group(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand::expand(args, item.clone()) {
        Ok(expanded) => expanded,
        Err(error) => {
            // Keep the function as written, so that the rest of the crate still compiles
            // against it and an IDE keeps working while the attribute is being fixed.
            let mut out = item;
            out.extend(error.into_compile_error());
            out
        }
    }
}
