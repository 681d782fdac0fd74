//! Every form of `#[serial_group]`: several groups, stacked attributes, `shared`,
//! `max = N`, `timeout`, `crate = ".."`, and functions whose signature and body the
//! attribute must leave working as written.
//!
//! Inside a group, a test creates a marker file named after the group with `create_new`,
//! so that two exclusive holders at once (threads under `cargo test`, processes under
//! `cargo nextest run`) make the second creation fail.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;

use isofix::serial_group;

/// A marker file that exists only while its holder is inside a group.
struct Marker(PathBuf);

impl Marker {
    fn path(name: &str) -> PathBuf {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serial_group_forms.{name}"))
    }

    /// Creates the marker `name`; `None` if it exists and its holder is alive.
    fn try_create(name: &str) -> Option<Marker> {
        let path = Self::path(name);
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    write!(file, "{}", std::process::id()).unwrap();
                    return Some(Marker(path));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if !left_by_dead_process(&path) {
                        return None;
                    }
                    // A run killed inside the group (a timeout, ^C) left it behind.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => panic!("create {}: {e}", path.display()),
            }
        }
        None
    }

    /// Creates the marker `name`, which nobody else may hold now.
    fn create(name: &str) -> Marker {
        Self::try_create(name).unwrap_or_else(|| panic!("two holders of {name} at once"))
    }

    fn exists(name: &str) -> bool {
        Self::path(name).exists()
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn left_by_dead_process(path: &Path) -> bool {
    let pid = std::fs::read_to_string(path).unwrap_or_default();
    cfg!(target_os = "linux")
        && !pid.is_empty()
        && pid != std::process::id().to_string()
        && !Path::new("/proc").join(pid.trim()).exists()
}

// Several groups, in either order, alone or stacked: each group still has one holder at a
// time, and tests naming the same groups in other orders run without deadlocking.

#[test]
#[serial_group("isofix-tests-forms-a", "isofix-tests-forms-b")]
fn two_groups() {
    let _a = Marker::create("a");
    let _b = Marker::create("b");
}

#[test]
#[serial_group("isofix-tests-forms-b", "isofix-tests-forms-a")]
fn two_groups_in_the_other_order() {
    let _b = Marker::create("b");
    let _a = Marker::create("a");
}

#[test]
#[serial_group("isofix-tests-forms-a")]
fn first_group_alone() {
    let _a = Marker::create("a");
}

#[test]
#[serial_group("isofix-tests-forms-b")]
fn second_group_alone() {
    let _b = Marker::create("b");
}

#[serial_group("isofix-tests-forms-b")]
#[serial_group("isofix-tests-forms-a")]
#[test]
fn stacked_attributes_are_merged() {
    let _a = Marker::create("a");
    let _b = Marker::create("b");
}

#[isofix::serial_group("isofix-tests-forms-a", timeout = 60)]
#[test]
#[serial_group("isofix-tests-forms-b", "isofix-tests-forms-a")]
fn stacked_under_other_paths_and_attributes() {
    let _b = Marker::create("b");
    let _a = Marker::create("a");
}

// `shared`: readers together, the writer alone.

#[serial_group("isofix-tests-forms-db", shared)]
fn read(together: &Barrier) {
    static READERS: AtomicUsize = AtomicUsize::new(0);
    let me = READERS.fetch_add(1, Ordering::Relaxed);
    let _reader = Marker::create(&format!("db.reader.{}.{me}", std::process::id()));
    assert!(
        !Marker::exists("db.writer"),
        "a reader ran beside the writer"
    );
    // Both readers must be inside at once to get past this.
    together.wait();
}

#[test]
fn shared_holders_run_together() {
    let together = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| read(&together));
        s.spawn(|| read(&together));
    });
}

#[test]
#[serial_group("isofix-tests-forms-db")]
fn exclusive_holder_runs_alone() {
    let _writer = Marker::create("db.writer");
    let readers = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy()
                .starts_with("serial_group_forms.db.reader.")
        })
        .count();
    assert_eq!(readers, 0, "the writer ran beside a reader");
}

// `max = 2`: two holders together, never three.

#[serial_group("isofix-tests-forms-heavy", max = 2)]
fn heavy(together: Option<&Barrier>) {
    let slot = Marker::try_create("heavy.0")
        .or_else(|| Marker::try_create("heavy.1"))
        .expect("a third holder got in");
    if let Some(together) = together {
        together.wait();
    }
    drop(slot);
}

#[test]
fn max_holders_run_together() {
    let together = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| heavy(Some(&together)));
        s.spawn(|| heavy(Some(&together)));
    });
}

#[test]
fn no_more_than_max_holders() {
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| heavy(None));
        }
    });
}

// `crate = ".."`: isofix reached through another path.

mod reexport {
    pub use isofix as iso;
}

#[test]
#[serial_group("isofix-tests-forms-a", crate = "crate::reexport::iso")]
fn crate_path_through_a_reexport() {
    let _a = Marker::create("a");
}

#[test]
#[serial_group("isofix-tests-forms-a", crate = "::isofix")]
fn crate_path_absolute() {
    let _a = Marker::create("a");
}

// The path is read as Rust tokens, so a comment in it is no part of the path (and must not
// swallow the rest of the generated statement).
#[test]
#[serial_group("isofix-tests-forms-a", crate = "::isofix // the crate itself")]
fn crate_path_with_a_comment() {
    let _a = Marker::create("a");
}

// Group names are string literals of any kind, escapes resolved as rustc resolves them:
// the attribute holds the group the literal's value names, which another thread then finds
// busy.

#[test]
#[serial_group(
    "isofix-tests-forms-\"esc\"\t\\\u{e9}\x21\
     -end"
)]
fn escaped_group_name() {
    assert_held("isofix-tests-forms-\"esc\"\u{9}\\\u{e9}!-end");
}

#[test]
#[serial_group(r#"isofix-tests-forms-"raw"\n"#)]
fn raw_group_name() {
    assert_held("isofix-tests-forms-\"raw\"\\n");
}

/// Fails unless `group` is held (by the calling test): a holder on another thread must
/// time out, where a free group would be taken at once.
fn assert_held(group: &'static str) {
    let taken = std::thread::spawn(move || {
        isofix::SerialGuard::group(group)
            .timeout(std::time::Duration::from_millis(1))
            .acquire()
            .map(drop)
    })
    .join()
    .unwrap();
    let error = taken.expect_err("the attribute did not hold the group its literal names");
    assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");
}

// The function keeps working as written.

/// Generic, with a where clause, returning a borrow of its argument from its tail.
#[serial_group("isofix-tests-forms-misc")]
#[must_use]
fn largest<T>(items: &[T]) -> Option<&T>
where
    T: Ord,
{
    let _m = Marker::create("misc");
    items.iter().max()
}

#[serial_group("isofix-tests-forms-misc")]
fn early_return(n: u32) -> u32 {
    #![allow(clippy::needless_return)]
    let _m = Marker::create("misc");
    if n > 1 {
        return n * 2;
    }
    0
}

#[serial_group("isofix-tests-forms-misc")]
fn sum<const N: usize>(values: [u32; N], extra: impl Into<u32>) -> u32 {
    let _m = Marker::create("misc");
    values.iter().sum::<u32>() + extra.into()
}

#[test]
fn signature_and_body_are_kept() {
    assert_eq!(largest(&[3, 9, 4]), Some(&9));
    assert_eq!(early_return(5), 10);
    assert_eq!(early_return(1), 0);
    assert_eq!(sum([1, 2, 3], 4u8), 10);
}

#[test]
#[serial_group("isofix-tests-forms-misc")]
fn question_mark_in_a_test_returning_result() -> Result<(), std::num::ParseIntError> {
    let _m = Marker::create("misc");
    let n: u32 = "7".parse()?;
    assert_eq!(n, 7);
    Ok(())
}

#[test]
#[should_panic(expected = "boom")]
#[serial_group("isofix-tests-forms-misc")]
fn should_panic_is_kept() {
    let _m = Marker::create("misc");
    panic!("boom");
}

#[serial_group("isofix-tests-forms-panic")]
fn panics_inside() {
    panic!("inside the group");
}

#[serial_group("isofix-tests-forms-panic")]
fn enters_after() -> bool {
    true
}

#[test]
fn panic_releases_the_groups() {
    assert!(std::panic::catch_unwind(panics_inside).is_err());
    // Would wait forever if the panic had not released the group.
    assert!(enters_after());
}

#[test]
#[serial_group("isofix-tests-forms-misc")]
fn the_guard_is_invisible_to_the_body() {
    let _m = Marker::create("misc");
    // The same name in the body is another variable; the group stays held.
    let __isofix_serial_guard = 5;
    assert_eq!(__isofix_serial_guard, 5);
}

macro_rules! guarded_test {
    ($name:ident, $group:literal, $seconds:literal) => {
        #[test]
        #[serial_group($group, timeout = $seconds)]
        fn $name() {
            let _m = Marker::create("misc");
        }
    };
}

guarded_test!(
    arguments_from_macro_rules_fragments,
    "isofix-tests-forms-misc",
    60
);

macro_rules! guarded_fn {
    ($vis:vis fn $name:ident() -> $ret:ty $body:block) => {
        #[serial_group("isofix-tests-forms-misc")]
        $vis fn $name() -> $ret $body
    };
}

guarded_fn!(
    pub(crate) fn from_fragments() -> u32 {
        let _m = Marker::create("misc");
        7
    }
);

macro_rules! guarded_item {
    ($item:item) => {
        #[serial_group("isofix-tests-forms-misc")]
        $item
    };
}

guarded_item!(
    fn from_an_item_fragment() -> u32 {
        let _m = Marker::create("misc");
        8
    }
);

#[test]
fn functions_from_macro_rules_fragments() {
    assert_eq!(from_fragments(), 7);
    assert_eq!(from_an_item_fragment(), 8);
}
