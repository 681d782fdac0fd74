//! `cargo isofix nextest-groups`: nextest test groups from `#[serial_group]` attributes, so
//! that nextest never starts a test that would only wait for its group and hold a slot.
//!
//! A nextest test belongs to at most one test group, and a group has no shared mode. So
//! what maps is a test with one group taken exclusively (a test group with one thread) or
//! with `max = N` (N threads), when every test of that group takes it the same way. The
//! rest is listed with the reason; isofix still serializes those tests at run time.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use syn::visit::{self, Visit};

use crate::cargo;

const BEGIN: &str = "# BEGIN cargo isofix nextest-groups: generated from #[serial_group]; \
                     rerun `cargo isofix nextest-groups` instead of editing";
const END: &str = "# END cargo isofix nextest-groups";

#[derive(Args, Debug)]
#[command(
    after_help = "Writes a marked block to .config/nextest.toml at the workspace root \
    and leaves the rest of the file as it is.\n\n\
    Exit status: 0 when the file is written or, with --check, up to date; 1 when --check \
    finds it out of date; 2 on errors."
)]
pub struct GroupsArgs {
    /// Only check that .config/nextest.toml is up to date (for CI); write nothing
    #[arg(long)]
    check: bool,
    /// The Cargo.toml of the workspace [default: the one cargo finds from here]
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
}

/// How a test takes its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Exclusive,
    Shared,
    Max(u64),
}

/// One function with `#[serial_group]`.
#[derive(Debug, Clone)]
struct Grouped {
    binary_id: String,
    test: String,
    groups: Vec<String>,
    mode: Mode,
    is_test: bool,
    /// Whether the function is a template of several tests named `<fn>::<case>`
    /// (`#[rstest]`, `#[test_case]`).
    has_cases: bool,
    file: PathBuf,
    line: usize,
}

pub fn run(args: GroupsArgs) -> Result<ExitCode, String> {
    let meta = cargo::metadata(args.manifest_path.as_deref())?;
    let mut grouped = Vec::new();
    for target in &meta.targets {
        let mut seen = Vec::new();
        scan_module(
            &target.src_path,
            "",
            &target.binary_id,
            true,
            &mut grouped,
            &mut seen,
        )?;
    }
    let (block, unmapped) = render(&grouped);
    for (test, why) in &unmapped {
        eprintln!("not mapped: {test}: {why}");
    }
    let config = meta.workspace_root.join(".config").join("nextest.toml");
    let current = fs::read_to_string(&config).unwrap_or_default();
    let updated = with_block(&current, &block)?;
    if args.check {
        if updated == current {
            println!("{} is up to date", config.display());
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{} is out of date: run `cargo isofix nextest-groups`",
            config.display()
        );
        return Ok(ExitCode::from(1));
    }
    if updated != current {
        fs::create_dir_all(config.parent().expect("a file in .config"))
            .and_then(|()| fs::write(&config, &updated))
            .map_err(|e| format!("write {}: {e}", config.display()))?;
    }
    let mapped = grouped.iter().filter(|g| g.is_test).count() - unmapped.len();
    println!(
        "{}: {mapped} tests in nextest test groups, {} not mapped",
        config.display(),
        unmapped.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Scans the module in `file` (path `module` in `binary_id`) and the files of its
/// `mod x;` declarations.
fn scan_module(
    file: &Path,
    module: &str,
    binary_id: &str,
    is_root: bool,
    out: &mut Vec<Grouped>,
    seen: &mut Vec<PathBuf>,
) -> Result<(), String> {
    if seen.iter().any(|s| s == file) {
        return Ok(());
    }
    seen.push(file.to_owned());
    let source = fs::read_to_string(file).map_err(|e| format!("read {}: {e}", file.display()))?;
    let ast = syn::parse_file(&source).map_err(|e| format!("{}: {e}", file.display()))?;
    // Where `mod x;` looks for x: beside a root or mod.rs file, else in a directory
    // named after this file.
    let dir = if is_root || file.file_name().is_some_and(|n| n == "mod.rs") {
        file.parent().unwrap_or(Path::new(".")).to_owned()
    } else {
        file.with_extension("")
    };
    let mut v = Scanner {
        file: file.to_owned(),
        binary_id: binary_id.to_owned(),
        module: module
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        found: Vec::new(),
        children: Vec::new(),
        dir,
    };
    v.visit_file(&ast);
    out.extend(v.found);
    for (path, module) in v.children {
        if path.exists() {
            scan_module(&path, &module, binary_id, false, out, seen)?;
        }
    }
    Ok(())
}

struct Scanner {
    file: PathBuf,
    binary_id: String,
    module: Vec<String>,
    found: Vec<Grouped>,
    /// Files of `mod x;` declarations, with their module paths.
    children: Vec<(PathBuf, String)>,
    dir: PathBuf,
}

impl<'ast> Visit<'ast> for Scanner {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let name = m.ident.to_string();
        let path_attr = m.attrs.iter().find_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        });
        if m.content.is_none() {
            let module = [self.module.join("::"), name.clone()]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("::");
            let file = match path_attr {
                Some(p) => self.file.parent().unwrap_or(Path::new(".")).join(p),
                None if self.dir.join(format!("{name}.rs")).exists() => {
                    self.dir.join(format!("{name}.rs"))
                }
                None => self.dir.join(&name).join("mod.rs"),
            };
            self.children.push((file, module));
            return;
        }
        self.module.push(name);
        visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        let attr_named = |names: &[&str]| {
            f.attrs.iter().any(|a| {
                a.path()
                    .segments
                    .last()
                    .is_some_and(|s| names.contains(&s.ident.to_string().as_str()))
            })
        };
        let has_cases = attr_named(&["rstest", "test_case"]);
        let is_test = has_cases || attr_named(&["test"]);
        let mut groups = Vec::new();
        let mut modes = Vec::new();
        for attr in f.attrs.iter().filter(|a| {
            a.path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "serial_group")
        }) {
            let (names, mode) = parse_args(attr);
            groups.extend(names);
            modes.push(mode);
        }
        if !modes.is_empty() {
            let mode = if modes.iter().all(|m| *m == modes[0]) {
                modes[0].clone()
            } else {
                Mode::Shared // stacked attributes must agree; the macro rejects this
            };
            let test = self
                .module
                .iter()
                .cloned()
                .chain([f.sig.ident.to_string()])
                .collect::<Vec<_>>()
                .join("::");
            self.found.push(Grouped {
                binary_id: self.binary_id.clone(),
                test,
                groups,
                mode,
                is_test,
                has_cases,
                file: self.file.clone(),
                line: f.sig.ident.span().start().line,
            });
        }
        visit::visit_item_fn(self, f);
    }
}

/// The group names and mode of one `#[serial_group(...)]`: string literals are names,
/// `shared` and `max = N` the modes; other options (`timeout`, `crate`) do not matter here.
fn parse_args(attr: &syn::Attribute) -> (Vec<String>, Mode) {
    use syn::{Expr, ExprLit, Lit};
    let mut names = Vec::new();
    let mut mode = Mode::Exclusive;
    let args = attr
        .parse_args_with(syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated)
        .unwrap_or_default();
    for arg in args {
        match arg {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => names.push(s.value()),
            Expr::Path(p) if p.path.is_ident("shared") => mode = Mode::Shared,
            Expr::Assign(a) => {
                let is_max = matches!(&*a.left, Expr::Path(p) if p.path.is_ident("max"));
                if let (
                    true,
                    Expr::Lit(ExprLit {
                        lit: Lit::Int(n), ..
                    }),
                ) = (is_max, &*a.right)
                {
                    mode = Mode::Max(n.base10_parse().unwrap_or(1));
                }
            }
            _ => {}
        }
    }
    (names, mode)
}

/// The config block for `grouped`, and the tests it cannot map with why.
fn render(grouped: &[Grouped]) -> (String, Vec<(String, String)>) {
    let tests: Vec<&Grouped> = grouped.iter().filter(|g| g.is_test).collect();
    // How the tests that could map take each group: exclusive and `max = N` tests of one
    // group cannot share a nextest group.
    let mut ways: BTreeMap<&str, Vec<&Mode>> = BTreeMap::new();
    for g in tests
        .iter()
        .filter(|g| g.groups.len() == 1 && g.mode != Mode::Shared)
    {
        ways.entry(g.groups[0].as_str()).or_default().push(&g.mode);
    }
    let mut unmapped = Vec::new();
    let mut members: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
    for g in tests {
        let id = format!(
            "{} {} ({}:{})",
            g.binary_id,
            g.test,
            g.file.display(),
            g.line
        );
        let why = if g.groups.len() != 1 {
            Some(format!(
                "takes {} groups ({}); a nextest test belongs to at most one test group",
                g.groups.len(),
                g.groups.join(", ")
            ))
        } else if g.mode == Mode::Shared {
            Some("takes its group shared; nextest test groups have no shared mode".to_owned())
        } else if ways[g.groups[0].as_str()].iter().any(|m| **m != g.mode) {
            Some(format!(
                "other tests take group {:?} another way",
                g.groups[0]
            ))
        } else {
            None
        };
        if let Some(why) = why {
            unmapped.push((id, why));
            continue;
        }
        let threads = match g.mode {
            Mode::Max(n) => n,
            _ => 1,
        };
        members
            .entry(group_id(&g.groups[0]))
            .or_insert_with(|| (threads, Vec::new()))
            .1
            .push(if g.has_cases {
                format!("(binary_id(={}) & test(/^{}::/))", g.binary_id, g.test)
            } else {
                format!("(binary_id(={}) & test(={}))", g.binary_id, g.test)
            });
    }
    let mut block = format!("{BEGIN}\n");
    if !members.is_empty() {
        block.push_str("[test-groups]\n");
        for (id, (threads, _)) in &members {
            block.push_str(&format!("{id} = {{ max-threads = {threads} }}\n"));
        }
        for (id, (_, filters)) in &members {
            block.push_str(&format!(
                "\n[[profile.default.overrides]]\nfilter = '{}'\ntest-group = '{id}'\n",
                filters.join(" | ")
            ));
        }
    }
    block.push_str(END);
    block.push('\n');
    (block, unmapped)
}

/// A nextest group id for an isofix group name: `isofix-` and the name with anything but
/// letters, digits, `-` and `_` turned into `-`.
fn group_id(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("isofix-{slug}")
}

/// `current` with our block replaced by `block`, or appended.
fn with_block(current: &str, block: &str) -> Result<String, String> {
    if let (Some(start), Some(end)) = (current.find(BEGIN), current.find(END)) {
        let end = end + END.len();
        let end = end + usize::from(current[end..].starts_with('\n'));
        return Ok(format!("{}{block}{}", &current[..start], &current[end..]));
    }
    if current.lines().any(|l| l.trim() == "[test-groups]") && block.contains("[test-groups]") {
        return Err(format!(
            ".config/nextest.toml already has a [test-groups] table; move its groups into \
             the generated block or add these lines yourself:\n{block}"
        ));
    }
    let mut out = current.to_owned();
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
    out.push_str(block);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(test: &str, groups: &[&str], mode: Mode) -> Grouped {
        Grouped {
            binary_id: "pkg::t".into(),
            test: test.into(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            mode,
            is_test: true,
            has_cases: false,
            file: "tests/t.rs".into(),
            line: 1,
        }
    }

    #[test]
    fn what_maps_and_what_does_not() {
        let (block, unmapped) = render(&[
            g("a", &["ws"], Mode::Exclusive),
            g("b", &["ws"], Mode::Exclusive),
            g("c", &["heavy"], Mode::Max(4)),
            g("d", &["ws", "db"], Mode::Exclusive),
            g("e", &["db"], Mode::Shared),
            g("e2", &["db"], Mode::Exclusive),
            g("f", &["mixed"], Mode::Exclusive),
            g("h", &["mixed"], Mode::Max(2)),
        ]);
        assert!(block.contains("isofix-ws = { max-threads = 1 }"), "{block}");
        assert!(
            block.contains("isofix-heavy = { max-threads = 4 }"),
            "{block}"
        );
        assert!(block.contains("isofix-db = { max-threads = 1 }"), "{block}");
        assert!(
            block.contains("filter = '(binary_id(=pkg::t) & test(=a)) | (binary_id(=pkg::t) & test(=b))'\ntest-group = 'isofix-ws'"),
            "{block}"
        );
        let why: Vec<&str> = unmapped.iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(why.len(), 4, "{unmapped:?}");
        assert!(why[0].contains("at most one test group"));
        assert!(why[1].contains("no shared mode"));
        assert!(why[2].contains("another way") && why[3].contains("another way"));
    }

    #[test]
    fn the_block_replaces_itself_and_keeps_the_rest() {
        let block = format!("{BEGIN}\n[test-groups]\nisofix-a = {{ max-threads = 1 }}\n{END}\n");
        let first = with_block("[profile.default]\nretries = 1\n", &block).unwrap();
        assert!(first.starts_with("[profile.default]\nretries = 1\n\n# BEGIN"));
        assert_eq!(with_block(&first, &block).unwrap(), first);
        let other = format!("{BEGIN}\n{END}\n");
        assert_eq!(
            with_block(&first, &other).unwrap(),
            format!("[profile.default]\nretries = 1\n\n{other}")
        );
        assert!(with_block("[test-groups]\nx = { max-threads = 2 }\n", &block).is_err());
    }

    #[test]
    fn attribute_arguments_are_read() {
        let f: syn::ItemFn = syn::parse_quote! {
            #[serial_group("a", "b", max = 3, timeout = 30)]
            fn t() {}
        };
        assert_eq!(
            parse_args(&f.attrs[0]),
            (vec!["a".into(), "b".into()], Mode::Max(3))
        );
        let f: syn::ItemFn = syn::parse_quote! { #[isofix::serial_group("db", shared)] fn t() {} };
        assert_eq!(parse_args(&f.attrs[0]), (vec!["db".into()], Mode::Shared));
    }
}
