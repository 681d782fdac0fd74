//! Colours on a terminal, plain text elsewhere (and with `NO_COLOR` set).

use std::io::IsTerminal;

/// Whether stdout gets colours.
pub fn stdout_colours() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Whether stderr gets colours.
fn stderr_colours() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// `text` in bold red when `colour`, else as is.
pub fn bad(text: &str, colour: bool) -> String {
    paint(text, "1;31", colour)
}

/// `text` in green when `colour`, else as is.
pub fn good(text: &str, colour: bool) -> String {
    paint(text, "32", colour)
}

/// `text` in bold when `colour`, else as is.
pub fn strong(text: &str, colour: bool) -> String {
    paint(text, "1", colour)
}

fn paint(text: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Prints `error: <message>` on stderr.
pub fn error(message: &str) {
    eprintln!("{}: {message}", bad("error", stderr_colours()));
}
