//! `cargo run -p isofix-demo`: see the crate's library for what it shows.

fn main() -> std::io::Result<()> {
    isofix_demo::run()
}
