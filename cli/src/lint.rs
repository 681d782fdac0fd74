//! `cargo isofix lint`: a static scan of test code for the patterns behind flaky parallel
//! tests. Rust is parsed with `syn`; only test code is looked at: files under a `tests`
//! directory, `#[cfg(test)]` modules and functions marked as tests (`#[test]`,
//! `#[tokio::test]`, `#[rstest]`, `#[test_case]`, ...).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use proc_macro2::Span;
use serde::Serialize;
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Attribute, Expr, ExprCall, ExprMethodCall, Lit, Macro, Token};

use crate::style;

#[derive(Args, Debug)]
#[command(
    after_help = "Patterns: fixed ports in binds, connects and URLs; fixed temp paths; a \
    static Mutex serializing tests; #[serial] from serial_test; a picked port handed to a \
    child process; set_var / set_current_dir in tests; thread::sleep used as a wait.\n\n\
    Exit status: 0 when nothing was found, 1 when something was, 2 when a path could not be \
    read or parsed."
)]
pub struct LintArgs {
    /// Files or directories to scan [default: the current directory]
    #[arg(value_name = "PATHS")]
    paths: Vec<PathBuf>,
    /// Print the findings as JSON
    #[arg(long)]
    json: bool,
}

/// A pattern the lint knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    FixedPort,
    PickedPort,
    PickedPortToChild,
    FixedTempPath,
    StaticMutex,
    SerialAttribute,
    EnvMutation,
    SleepAsWait,
}

impl Pattern {
    fn why(self) -> &'static str {
        match self {
            Pattern::FixedPort => "a fixed port collides with any other test, run or program using it at the same time",
            Pattern::PickedPort => "the picked port is released, and another test can take it before this one binds it",
            Pattern::PickedPortToChild => "the picked port is released before the child binds it, and another test can take it in between",
            Pattern::FixedTempPath => "every test and every concurrent run shares this path: they delete and overwrite each other's files",
            Pattern::StaticMutex => "a static Mutex only serializes threads of one process; nextest runs each test in its own process",
            Pattern::SerialAttribute => "serial_test's #[serial] only excludes threads of one process; under nextest it does nothing",
            Pattern::EnvMutation => "the environment and the working directory are shared by every test thread of the process",
            Pattern::SleepAsWait => "a sleep is a guess: under load the awaited thing is not ready yet, and the test fails",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Pattern::FixedPort | Pattern::PickedPort => "let srv = isofix::EphemeralTcp::bind()?; // then use srv.port() / srv.addr()",
            Pattern::PickedPortToChild => "keep `let srv = isofix::EphemeralTcp::bind()?;` alive and hand the child its socket, or let the child bind port 0 and report its port",
            Pattern::FixedTempPath => "let dir = isofix::IsolatedDir::new()?; // private, removed on drop",
            Pattern::StaticMutex | Pattern::SerialAttribute => "#[isofix::serial_group(\"name\")] // holds across threads and processes",
            Pattern::EnvMutation => "pass the value explicitly; if impossible, #[isofix::serial_group(\"env\")] on every test that reads or writes it",
            Pattern::SleepAsWait => "wait for the event itself: a live EphemeralTcp to connect to, a ready line, a join, a channel",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub file: PathBuf,
    pub line: usize,
    pub pattern: Pattern,
    pub what: String,
    pub why: &'static str,
    pub fix: &'static str,
}

pub fn run(args: LintArgs) -> Result<ExitCode, String> {
    let roots = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths
    };
    let mut files = Vec::new();
    for root in &roots {
        collect_rs(root, &mut files).map_err(|e| format!("read {}: {e}", root.display()))?;
    }
    files.sort();
    let mut findings = Vec::new();
    let mut unreadable = Vec::new();
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(source) => match scan(file, &source) {
                Ok(found) => findings.extend(found),
                Err(e) => unreadable.push(format!("{}: {e}", file.display())),
            },
            Err(e) => unreadable.push(format!("{}: {e}", file.display())),
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&findings).expect("plain data")
        );
    } else {
        let colour = style::stdout_colours();
        for f in &findings {
            println!(
                "{}:{}: {} {}\n  why: {}\n  fix: {}\n",
                f.file.display(),
                f.line,
                style::bad(&format!("{:?}", f.pattern), colour),
                style::strong(&f.what, colour),
                f.why,
                f.fix
            );
        }
        println!("{} files scanned, {} findings", files.len(), findings.len());
    }
    for problem in &unreadable {
        style::error(&format!("could not scan {problem}"));
    }
    Ok(if !unreadable.is_empty() {
        ExitCode::from(2)
    } else if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Every `.rs` file under `path`, skipping `target` and hidden directories.
fn collect_rs(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_owned());
        }
        return Ok(());
    }
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_rs(&entry.path(), out)?;
        } else if kind.is_file() && name.ends_with(".rs") {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// The findings in one file's `source`.
pub fn scan(file: &Path, source: &str) -> Result<Vec<Finding>, String> {
    let ast =
        syn::parse_file(source).map_err(|e| format!("line {}: {e}", e.span().start().line))?;
    let in_tests_dir = file
        .components()
        .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "test");
    let mut v = Scanner {
        file: file.to_owned(),
        test_depth: usize::from(in_tests_dir),
        fn_spawns: false,
        picked_in_fn: Vec::new(),
        ports_in_fn: Vec::new(),
        fn_depth: 0,
        fn_networks: false,
        in_assert: false,
        in_watchdog: false,
        uses_serial_group: false,
        findings: Vec::new(),
    };
    v.visit_file(&ast);
    let mut findings = v.findings;
    if v.uses_serial_group {
        // A file that takes isofix serial groups shares its fixed paths on purpose.
        findings.retain(|f| f.pattern != Pattern::FixedTempPath);
    }
    findings.sort_by_key(|f| f.line);
    findings.dedup_by_key(|f| (f.line, f.pattern));
    Ok(findings)
}

struct Scanner {
    file: PathBuf,
    /// Above 0 inside test code.
    test_depth: usize,
    /// Whether the current function starts a process.
    fn_spawns: bool,
    /// Picked ports seen in the current function, to judge once it is read whole.
    picked_in_fn: Vec<(usize, String)>,
    /// Fixed addresses seen in the current function: reported at its end if it also
    /// binds or connects, so that tests of address parsing and formatting are left alone.
    ports_in_fn: Vec<(Span, String)>,
    fn_depth: usize,
    /// Whether the current function binds, connects or serves.
    fn_networks: bool,
    /// Inside the arguments of `assert!`-like macros, where an address is an expected
    /// value, not a bind.
    in_assert: bool,
    /// Inside a watchdog closure (one that exits or aborts the process), whose sleep is a
    /// deadline, not a wait.
    in_watchdog: bool,
    /// Whether the file takes isofix serial groups.
    uses_serial_group: bool,
    findings: Vec<Finding>,
}

impl Scanner {
    fn report(&mut self, span: Span, pattern: Pattern, what: String) {
        if self.test_depth == 0 {
            return;
        }
        self.findings.push(Finding {
            file: self.file.clone(),
            line: span.start().line,
            pattern,
            what,
            why: pattern.why(),
            fix: pattern.fix(),
        });
    }

    fn check_str(&mut self, text: &str, span: Span) {
        if let Some(addr) = fixed_port_in(text).filter(|_| !self.in_assert) {
            let what = format!("fixed port in {addr:?}");
            if self.fn_depth == 0 {
                // A constant or static address: made to be bound or connected to.
                self.report(span, Pattern::FixedPort, what);
            } else {
                self.ports_in_fn.push((span, what));
            }
        } else if text.starts_with("/tmp/") || text.starts_with("/var/tmp/") {
            self.report(
                span,
                Pattern::FixedTempPath,
                format!("fixed temp path {text:?}"),
            );
        }
    }

    /// Visits the arguments of a macro call as expressions, where they parse as such.
    fn visit_macro_args(&mut self, mac: &Macro) {
        let name = mac
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        let was = self.in_assert;
        self.in_assert |= name.contains("assert");
        if let Ok(args) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            for arg in &args {
                self.visit_expr(arg);
            }
        }
        self.in_assert = was;
    }
}

fn is_test_attr(attr: &Attribute) -> bool {
    let path = attr.path();
    let last = path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    if matches!(
        last.as_str(),
        "test" | "rstest" | "test_case" | "test_log" | "serial_group"
    ) {
        return true;
    }
    // #[cfg(test)]
    path.is_ident("cfg") && attr.parse_args::<syn::Ident>().is_ok_and(|i| i == "test")
}

fn last_segment(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

fn path_text(expr: &Expr) -> String {
    match expr {
        Expr::Path(p) => p
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect::<Vec<_>>()
            .join("::"),
        _ => String::new(),
    }
}

/// `host:port` with a loopback or wildcard host and a non-zero port, alone or in a URL.
fn fixed_port_in(text: &str) -> Option<&str> {
    if text.contains(char::is_whitespace) {
        return None;
    }
    let rest = text.split_once("://").map_or(text, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let loopback = matches!(host, "localhost" | "0.0.0.0" | "[::1]" | "[::]" | "::1")
        || host.starts_with("127.");
    let port: u16 = port.parse().ok()?;
    (loopback && port != 0).then_some(authority)
}

impl<'ast> Visit<'ast> for Scanner {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let test = m.attrs.iter().any(is_test_attr);
        self.test_depth += usize::from(test);
        visit::visit_item_mod(self, m);
        self.test_depth -= usize::from(test);
    }

    fn visit_attribute(&mut self, attr: &'ast Attribute) {
        if attr
            .path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "serial_group")
        {
            self.uses_serial_group = true;
        }
        visit::visit_attribute(self, attr);
    }

    fn visit_path_segment(&mut self, segment: &'ast syn::PathSegment) {
        if segment.ident == "SerialGuard" {
            self.uses_serial_group = true;
        }
        visit::visit_path_segment(self, segment);
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        let test = f.attrs.iter().any(is_test_attr);
        for attr in &f.attrs {
            let path = attr.path();
            let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            let is_serial = names.last().is_some_and(|n| n == "serial")
                && (names.len() == 1 || names[0] == "serial_test");
            if is_serial && self.test_depth + usize::from(test) > 0 {
                self.test_depth += 1;
                self.report(
                    attr.pound_token.span,
                    Pattern::SerialAttribute,
                    format!("#[serial] on {}", f.sig.ident),
                );
                self.test_depth -= 1;
            }
        }
        let (spawns, picked) = (self.fn_spawns, std::mem::take(&mut self.picked_in_fn));
        let (networks, ports) = (self.fn_networks, std::mem::take(&mut self.ports_in_fn));
        self.fn_spawns = false;
        self.fn_networks = false;
        self.test_depth += usize::from(test);
        self.fn_depth += 1;
        visit::visit_item_fn(self, f);
        self.fn_depth -= 1;
        for (span, what) in std::mem::replace(&mut self.ports_in_fn, ports) {
            if self.fn_networks {
                self.report(span, Pattern::FixedPort, what);
            }
        }
        self.fn_networks = networks;
        let found = std::mem::replace(&mut self.picked_in_fn, picked);
        for (line, what) in found {
            let pattern = if self.fn_spawns {
                Pattern::PickedPortToChild
            } else {
                Pattern::PickedPort
            };
            if self.test_depth > 0 {
                self.findings.push(Finding {
                    file: self.file.clone(),
                    line,
                    pattern,
                    what,
                    why: pattern.why(),
                    fix: pattern.fix(),
                });
            }
        }
        self.test_depth -= usize::from(test);
        self.fn_spawns = spawns;
    }

    fn visit_item_static(&mut self, s: &'ast syn::ItemStatic) {
        let ty = quote_type(&s.ty);
        if ty.contains("Mutex<()>") {
            self.report(
                s.static_token.span,
                Pattern::StaticMutex,
                format!("static {}: {ty}", s.ident),
            );
        }
        visit::visit_item_static(self, s);
    }

    fn visit_expr_call(&mut self, call: &'ast ExprCall) {
        let name = last_segment(&call.func).unwrap_or_default();
        let full = path_text(&call.func);
        self.fn_networks |= is_network_call(&name);
        match name.as_str() {
            "set_var" | "remove_var" | "set_current_dir" if full.contains("env") => {
                self.report(
                    span_of_expr(&call.func),
                    Pattern::EnvMutation,
                    format!("{full}(..)"),
                );
            }
            "sleep" if (full.contains("thread") || full == "sleep") && !self.in_watchdog => {
                self.report(
                    span_of_expr(&call.func),
                    Pattern::SleepAsWait,
                    format!("{full}(..)"),
                );
            }
            "pick_unused_port" | "pick_free_port" | "get_available_port" | "free_port" => {
                let line = span_of_expr(&call.func).start().line;
                self.picked_in_fn.push((line, format!("{full}()")));
            }
            "new" if full.ends_with("Command::new") => self.fn_spawns = true,
            _ => {}
        }
        visit::visit_expr_call(self, call);
    }

    fn visit_expr_method_call(&mut self, call: &'ast ExprMethodCall) {
        self.fn_networks |= is_network_call(&call.method.to_string());
        if call.method == "join" && receiver_is_temp_dir(&call.receiver) {
            if let Some(Expr::Lit(lit)) = call.args.first() {
                if let Lit::Str(s) = &lit.lit {
                    self.report(
                        s.span(),
                        Pattern::FixedTempPath,
                        format!("temp_dir().join({:?})", s.value()),
                    );
                }
            }
        }
        if matches!(
            call.method.to_string().as_str(),
            "spawn" | "output" | "status"
        ) && receiver_mentions_command(&call.receiver)
        {
            self.fn_spawns = true;
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_expr_closure(&mut self, closure: &'ast syn::ExprClosure) {
        use quote::ToTokens;
        let body = closure.body.to_token_stream().to_string();
        let was = self.in_watchdog;
        self.in_watchdog |= body.contains("exit (") || body.contains("abort (");
        visit::visit_expr_closure(self, closure);
        self.in_watchdog = was;
    }

    fn visit_lit_str(&mut self, s: &'ast syn::LitStr) {
        self.check_str(&s.value(), s.span());
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        self.visit_macro_args(mac);
        let text = mac.tokens.to_string().replace(' ', "");
        if mac
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "lazy_static")
            && text.contains("Mutex<()>")
        {
            self.report(
                mac.path.segments[0].ident.span(),
                Pattern::StaticMutex,
                "lazy_static! Mutex<()>".to_owned(),
            );
        }
    }
}

/// Calls that bind, connect or serve: a fixed address near them is used on the network.
fn is_network_call(name: &str) -> bool {
    matches!(
        name,
        "bind"
            | "connect"
            | "connect_timeout"
            | "connect_async"
            | "listen"
            | "accept"
            | "serve"
            | "bind_addr"
            | "send_to"
            | "get"
            | "post"
            | "put"
            | "delete"
            | "request"
            | "client"
            | "server"
            | "run"
            | "start"
    ) || name.starts_with("bind_")
        || name.starts_with("connect_")
}

fn receiver_is_temp_dir(expr: &Expr) -> bool {
    match expr {
        Expr::Call(c) => last_segment(&c.func).is_some_and(|n| n == "temp_dir"),
        _ => false,
    }
}

fn receiver_mentions_command(expr: &Expr) -> bool {
    match expr {
        Expr::Call(c) => path_text(&c.func).ends_with("Command::new"),
        Expr::MethodCall(m) => receiver_mentions_command(&m.receiver),
        Expr::Path(_) | Expr::Reference(_) => true,
        _ => false,
    }
}

fn span_of_expr(expr: &Expr) -> Span {
    match expr {
        Expr::Path(p) => p
            .path
            .segments
            .first()
            .map_or_else(Span::call_site, |s| s.ident.span()),
        _ => Span::call_site(),
    }
}

/// A type as text without spaces, e.g. `Mutex<()>` or `LazyLock<Mutex<()>>`.
fn quote_type(ty: &syn::Type) -> String {
    use quote::ToTokens;
    ty.to_token_stream().to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(source: &str) -> Vec<(usize, Pattern)> {
        scan(Path::new("src/lib.rs"), source)
            .unwrap()
            .into_iter()
            .map(|f| (f.line, f.pattern))
            .collect()
    }

    #[test]
    fn each_pattern_is_found_in_test_code_with_its_line() {
        let source = r#"
#[cfg(test)]
mod tests {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    #[serial]
    fn t() {
        let l = std::net::TcpListener::bind("127.0.0.1:8080").unwrap();
        let url = format!("{}", "http://localhost:3000/api");
        let d = std::env::temp_dir().join("fixed");
        let f = std::fs::write("/tmp/my-test/data", "x");
        std::env::set_var("A", "1");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    #[test]
    fn child() {
        let port = portpicker::pick_unused_port().unwrap();
        std::process::Command::new("server").arg(port.to_string()).spawn().unwrap();
    }

    #[test]
    fn picked() {
        let port = portpicker::pick_unused_port().unwrap();
    }
}
"#;
        assert_eq!(
            patterns(source),
            [
                (4, Pattern::StaticMutex),
                (7, Pattern::SerialAttribute),
                (9, Pattern::FixedPort),
                (10, Pattern::FixedPort),
                (11, Pattern::FixedTempPath),
                (12, Pattern::FixedTempPath),
                (13, Pattern::EnvMutation),
                (14, Pattern::SleepAsWait),
                (19, Pattern::PickedPortToChild),
                (25, Pattern::PickedPort),
            ]
        );
    }

    #[test]
    fn code_outside_tests_and_safe_values_are_left_alone() {
        let source = r#"
fn main() {
    let l = std::net::TcpListener::bind("127.0.0.1:8080").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
}
#[test]
fn ok() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = "example.com:443";
    let d = std::env::temp_dir();
}
"#;
        assert!(patterns(source).is_empty(), "{:?}", patterns(source));
    }

    #[test]
    fn expected_values_and_paths_under_a_serial_group_are_left_alone() {
        let source = r#"
#[test]
fn url() {
    assert_eq!(format_url(8080), "http://127.0.0.1:8080");
}
"#;
        assert!(patterns(source).is_empty(), "{:?}", patterns(source));
        let source = r#"
#[test]
#[isofix::serial_group("log")]
fn log() {
    std::fs::write(std::env::temp_dir().join("shared.log"), "x").unwrap();
}
"#;
        assert!(patterns(source).is_empty(), "{:?}", patterns(source));
    }

    #[test]
    fn addresses_parsed_or_formatted_without_a_bind_are_left_alone() {
        let source = r#"
#[test]
fn parses() {
    let s = "127.0.0.1:8080";
    let addr: std::net::SocketAddr = s.parse().unwrap();
    println!("{addr}");
}
const ADDR: &str = "127.0.0.1:3012";
"#;
        let found: Vec<_> = scan(Path::new("tests/it.rs"), source)
            .unwrap()
            .into_iter()
            .map(|f| (f.line, f.pattern))
            .collect();
        assert_eq!(found, [(8, Pattern::FixedPort)]);
    }

    #[test]
    fn a_watchdog_sleep_is_not_a_wait() {
        let source = r#"
#[test]
fn t() {
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(5));
        std::process::exit(1);
    });
}
"#;
        assert!(patterns(source).is_empty(), "{:?}", patterns(source));
    }

    #[test]
    fn files_under_tests_are_test_code() {
        let found = scan(
            Path::new("tests/it.rs"),
            "fn helper() { std::env::set_var(\"A\", \"1\"); }",
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pattern, Pattern::EnvMutation);
    }

    #[test]
    fn addresses_are_told_apart() {
        assert_eq!(fixed_port_in("127.0.0.1:8080"), Some("127.0.0.1:8080"));
        assert_eq!(fixed_port_in("ws://[::1]:9000/chat"), Some("[::1]:9000"));
        assert_eq!(
            fixed_port_in("http://user@localhost:80/"),
            Some("user@localhost:80")
        );
        assert_eq!(fixed_port_in("127.0.0.1:0"), None);
        assert_eq!(fixed_port_in("example.com:443"), None);
        assert_eq!(fixed_port_in("a:b"), None);
    }
}
