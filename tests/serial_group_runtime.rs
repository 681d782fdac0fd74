//! `#[serial_group]` holds its groups until the test's runtime is gone, above or below the
//! runtime attribute.
//!
//! Each test binds one fixed port and serves it from a spawned task that outlives the body:
//! the task, and its listener, go only when `#[tokio::test]` drops the runtime. Were the
//! group released when the body ends, the next holder (a thread under `cargo test`, a
//! process under `cargo nextest run`) could bind while the previous listener still exists,
//! and fail with "address in use".

use isofix::serial_group;
use rstest::rstest;
use tokio::net::{TcpListener, TcpStream};

/// Fixed on purpose, like the port of a test suite that serves on one: below Linux's
/// ephemeral range (32768–60999), so no connection made elsewhere takes it.
const PORT: u16 = 29_417;

/// Binds the fixed port, serves it from a task left running, and checks that it serves.
async fn serve_on_the_fixed_port() {
    let listener = TcpListener::bind(("127.0.0.1", PORT))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "bind 127.0.0.1:{PORT}: {e}: the previous holder of the group still has its \
                 listener, so the group was released before its runtime was dropped"
            )
        });
    tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            drop(connection);
        }
    });
    TcpStream::connect(("127.0.0.1", PORT)).await.unwrap();
}

#[serial_group("isofix-tests-runtime-port")]
#[tokio::test]
async fn above_tokio_current_thread() {
    serve_on_the_fixed_port().await;
}

#[tokio::test]
#[serial_group("isofix-tests-runtime-port")]
async fn below_tokio_current_thread() {
    serve_on_the_fixed_port().await;
}

#[serial_group("isofix-tests-runtime-port")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn above_tokio_multi_thread() {
    serve_on_the_fixed_port().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial_group("isofix-tests-runtime-port")]
async fn below_tokio_multi_thread() {
    serve_on_the_fixed_port().await;
}

// With other attributes between it and the runtime attribute, and options that must
// survive the move.
#[serial_group("isofix-tests-runtime-port", timeout = 600)]
#[rstest]
#[case(1)]
#[case(2)]
#[tokio::test]
async fn above_rstest_and_tokio(#[case] _case: u32) {
    serve_on_the_fixed_port().await;
}

mod reexport {
    pub use isofix as iso;
}

// A `crate` path and a second, stacked attribute below the runtime attribute: both carried
// into the one attribute re-emitted beneath it.
#[serial_group("isofix-tests-runtime-port", crate = "crate::reexport::iso")]
#[tokio::test]
#[serial_group("isofix-tests-runtime-other")]
async fn above_tokio_with_a_crate_path_and_a_stacked_group() {
    serve_on_the_fixed_port().await;
}
