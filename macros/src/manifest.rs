//! Finds the name under which the invoking crate depends on isofix.
//!
//! Generated code must name the isofix crate, and a user may have renamed it
//! (`iso = { package = "isofix", .. }`). Cargo does not tell a proc macro about renames, so
//! the macro reads the invoking package's `Cargo.toml` (`CARGO_MANIFEST_DIR`) and looks for
//! a dependency whose `package` is `"isofix"` — or, for a dependency inherited from the
//! workspace (`iso.workspace = true`), in the workspace root's `[workspace.dependencies]`.
//! The scanner understands the parts of TOML that dependency tables use and nothing more;
//! whatever it does not find falls back to `::isofix`, and `crate = "path"` overrides it all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The path to the isofix crate for the crate being compiled, such as `::isofix` or `::iso`.
pub(crate) fn isofix_path() -> String {
    // isofix's own integration tests, examples and doctests see it as `isofix`.
    if std::env::var("CARGO_PKG_NAME").is_ok_and(|name| name == "isofix") {
        return "::isofix".to_owned();
    }
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return "::isofix".to_owned();
    };
    // One compiler process expands the attribute many times, and a language server's
    // expansion process serves many crates: cache the answer per manifest.
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let dir = PathBuf::from(dir);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(path) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&dir)
    {
        return path.clone();
    }
    let name = renamed_in(&dir);
    let path = format!(
        "::{}",
        name.as_deref().unwrap_or("isofix").replace('-', "_")
    );
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(dir, path.clone());
    path
}

/// The name under which the package in `dir` depends on isofix, if it renames it: in its
/// own manifest, or inherited from its workspace.
fn renamed_in(dir: &Path) -> Option<String> {
    let member = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    dependency_name(&member, "isofix").or_else(|| {
        let root = workspace_manifest(dir, &member)?;
        inherited_dependency_name(&member, &root, "isofix")
    })
}

/// The workspace root's manifest for the package in `dir` (whose manifest is `member`):
/// the one `package.workspace` names, else the nearest manifest, from `dir` upwards, that
/// has a `[workspace]` table — where Cargo looks too.
fn workspace_manifest(dir: &Path, member: &str) -> Option<String> {
    let named = entries(member)
        .into_iter()
        .find_map(|(key, value)| match value {
            Value::Str(root) if key == ["package", "workspace"] => Some(root),
            _ => None,
        });
    if let Some(root) = named {
        return std::fs::read_to_string(dir.join(root).join("Cargo.toml")).ok();
    }
    let is_root = |text: &str| {
        entries(text)
            .iter()
            .any(|(key, _)| key.first().is_some_and(|k| k == "workspace"))
    };
    if is_root(member) {
        return Some(member.to_owned());
    }
    dir.ancestors().skip(1).find_map(|ancestor| {
        let text = std::fs::read_to_string(ancestor.join("Cargo.toml")).ok()?;
        is_root(&text).then_some(text)
    })
}

/// The name of the dependency of `member` that is inherited from the workspace
/// (`name.workspace = true`) whose root manifest, `root`, renames `package` under it in
/// `[workspace.dependencies]`. Regular dependencies win, as in [`dependency_name`].
pub(crate) fn inherited_dependency_name(member: &str, root: &str, package: &str) -> Option<String> {
    let renamed: Vec<String> = entries(root)
        .into_iter()
        .filter_map(|(key, value)| match (key.as_slice(), value) {
            ([workspace, dependencies, name, field], Value::Str(value))
                if workspace == "workspace"
                    && dependencies == "dependencies"
                    && field == "package"
                    && value == package =>
            {
                Some(name.clone())
            }
            _ => None,
        })
        .collect();
    best(entries(member).iter().filter_map(|(key, value)| {
        let (rank, name) = dependency_field(key, "workspace")?;
        (*value == Value::Bare("true".to_owned()) && renamed.iter().any(|r| r == name))
            .then_some((rank, name))
    }))
}

/// The best-ranked (lowest) name of `found`; the first one among equals.
fn best<'a>(found: impl Iterator<Item = (u8, &'a str)>) -> Option<String> {
    let mut best: Option<(u8, &str)> = None;
    for (rank, name) in found {
        if best.is_none_or(|(b, _)| rank < b) {
            best = Some((rank, name));
        }
    }
    best.map(|(_, name)| name.to_owned())
}

/// The name of the dependency on `package` that renames it (`name = { package = "..." }`
/// or `[dependencies.name]` with `package = "..."`), in any dependency table. Regular
/// dependencies win over target-specific, build and dev ones.
pub(crate) fn dependency_name(manifest: &str, package: &str) -> Option<String> {
    let entries = entries(manifest);
    best(entries.iter().filter_map(|(key, value)| {
        let (rank, name) = dependency_field(key, "package")?;
        (*value == Value::Str(package.to_owned())).then_some((rank, name))
    }))
}

/// For a full key such as `["target", "cfg(unix)", "dependencies", "iso", "package"]` and
/// `wanted` = `"package"`, the dependency name and how much it is preferred (lower is
/// better).
fn dependency_field<'a>(key: &'a [String], wanted: &str) -> Option<(u8, &'a str)> {
    let (table, rest) = match key {
        [table, rest @ ..] if table != "target" => (table, rest),
        [_target, _cfg, table, rest @ ..] => (table, rest),
        _ => return None,
    };
    let [name, field] = rest else {
        return None;
    };
    if field != wanted {
        return None;
    }
    let targeted = key[0] == "target";
    let rank = match table.as_str() {
        "dependencies" if !targeted => 0,
        "dependencies" => 1,
        "dev-dependencies" | "dev_dependencies" => 2,
        "build-dependencies" | "build_dependencies" => 3,
        _ => return None,
    };
    Some((rank, name))
}

/// A value of the document, as far as the scanner tells them apart.
#[derive(Debug, PartialEq, Eq)]
enum Value {
    /// A quoted string, unescaped.
    Str(String),
    /// A bare value: `true`, `false`, a number or a date, as written.
    Bare(String),
    /// A table header (`[a.b]`), so that a table without values is seen too.
    Table,
}

/// Every table header and every string or bare value of the document with its full dotted
/// key (table headers, dotted keys and inline tables flattened). Arrays are skipped.
fn entries(text: &str) -> Vec<(Vec<String>, Value)> {
    let mut tokens = tokenize(text).into_iter().peekable();
    let mut table: Vec<String> = Vec::new();
    let mut out = Vec::new();
    while let Some(token) = tokens.next() {
        match token {
            Token::Newline => {}
            Token::Punct('[') => {
                // `[table]` or `[[array.of.tables]]` (not a dependency table: ignored).
                let array = tokens.next_if_eq(&Token::Punct('[')).is_some();
                let key = read_key(&mut tokens);
                table = if array { vec!["[[]]".to_owned()] } else { key };
                out.push((table.clone(), Value::Table));
                skip_line(&mut tokens);
            }
            Token::Key(first) | Token::Str(first) => {
                let mut key = table.clone();
                key.push(first);
                key.extend(read_key_tail(&mut tokens));
                if tokens.next_if_eq(&Token::Punct('=')).is_some() {
                    read_value(&mut tokens, key, &mut out);
                }
                skip_line(&mut tokens);
            }
            _ => skip_line(&mut tokens),
        }
    }
    out
}

type Tokens = std::iter::Peekable<std::vec::IntoIter<Token>>;

/// `a.b."c"` up to (not including) `]` or `=`.
fn read_key(tokens: &mut Tokens) -> Vec<String> {
    match tokens.next() {
        Some(Token::Key(first) | Token::Str(first)) => {
            let mut key = vec![first];
            key.extend(read_key_tail(tokens));
            key
        }
        _ => Vec::new(),
    }
}

/// The `.b.c` parts after a key's first part.
fn read_key_tail(tokens: &mut Tokens) -> Vec<String> {
    let mut key = Vec::new();
    while tokens.next_if_eq(&Token::Punct('.')).is_some() {
        match tokens.next() {
            Some(Token::Key(part) | Token::Str(part)) => key.push(part),
            _ => break,
        }
    }
    key
}

/// A value: strings and bare values are recorded under `key`, inline tables are walked,
/// arrays are skipped.
fn read_value(tokens: &mut Tokens, key: Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match tokens.next() {
        Some(Token::Str(value)) => out.push((key, Value::Str(value))),
        Some(Token::Key(value)) => out.push((key, Value::Bare(value))),
        Some(Token::Punct('{')) => loop {
            while tokens.next_if_eq(&Token::Newline).is_some() {}
            match tokens.next() {
                Some(Token::Key(first) | Token::Str(first)) => {
                    let mut inner = key.clone();
                    inner.push(first);
                    inner.extend(read_key_tail(tokens));
                    if tokens.next_if_eq(&Token::Punct('=')).is_none() {
                        return;
                    }
                    read_value(tokens, inner, out);
                }
                Some(Token::Punct(',')) => {}
                _ => return,
            }
        },
        Some(Token::Punct('[')) => {
            let mut depth = 1;
            while depth > 0 {
                match tokens.next() {
                    Some(Token::Punct('[')) => depth += 1,
                    Some(Token::Punct(']')) => depth -= 1,
                    None => return,
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn skip_line(tokens: &mut Tokens) {
    while tokens.next_if(|t| *t != Token::Newline).is_some() {}
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// A bare key or bare value (`iso`, `true`, `1.0`).
    Key(String),
    /// A quoted string, unescaped; quoted keys are strings too, so both kinds match keys.
    Str(String),
    Punct(char),
    Newline,
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => tokens.push(Token::Newline),
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            '"' | '\'' => {
                // Basic strings ("...") take escapes, literal ones ('...') do not; either
                // may be tripled to span lines.
                let triple = chars.next_if_eq(&c).is_some();
                if triple && chars.next_if_eq(&c).is_none() {
                    tokens.push(Token::Str(String::new()));
                    continue;
                }
                let mut value = String::new();
                while let Some(d) = chars.next() {
                    if d == c {
                        if !triple {
                            break;
                        }
                        if chars.next_if_eq(&c).is_some() {
                            if chars.next_if_eq(&c).is_some() {
                                break;
                            }
                            value.push(c);
                        }
                        value.push(c);
                    } else if d == '\\' && c == '"' {
                        value.extend(chars.next());
                    } else if d == '\n' && !triple {
                        tokens.push(Token::Newline);
                        break;
                    } else {
                        value.push(d);
                    }
                }
                tokens.push(Token::Str(value));
            }
            '=' | '[' | ']' | '{' | '}' | ',' | '.' => tokens.push(Token::Punct(c)),
            c if c.is_whitespace() => {}
            _ => {
                let mut word = String::from(c);
                while let Some(d) =
                    chars.next_if(|&d| d.is_ascii_alphanumeric() || "-_+:".contains(d))
                {
                    word.push(d);
                }
                tokens.push(Token::Key(word));
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::{dependency_name, inherited_dependency_name, renamed_in};
    use std::fs;
    use std::path::PathBuf;

    fn renamed(manifest: &str) -> Option<String> {
        dependency_name(manifest, "isofix")
    }

    #[test]
    fn plain_dependency_is_not_renamed() {
        let manifest = r#"
            [package]
            name = "app"

            [dev-dependencies]
            isofix = "0.1"
            other = { version = "1", package = "isofix-fork" }
        "#;
        assert_eq!(renamed(manifest), None);
    }

    #[test]
    fn inline_table_in_dev_dependencies() {
        let manifest = r#"
            [package]
            name = "app" # package = "isofix" in a comment is no dependency

            [dev-dependencies]
            tokio = { version = "1", features = ["macros", "rt"] }
            iso = { version = "0.1", package = "isofix", default-features = false }
        "#;
        assert_eq!(renamed(manifest).as_deref(), Some("iso"));
    }

    #[test]
    fn subtable_form() {
        let manifest =
            "[dependencies.my-iso]\nversion = '0.1'\npackage = 'isofix'\n\n[features]\nx = []\n";
        assert_eq!(renamed(manifest).as_deref(), Some("my-iso"));
    }

    #[test]
    fn dotted_key_and_quoted_keys() {
        let manifest = "[\"dependencies\"]\niso.package = \"isofix\"\niso.version = \"0.1\"\n";
        assert_eq!(renamed(manifest).as_deref(), Some("iso"));
        let manifest = "[dev-dependencies]\n\"q-iso\" = { \"package\" = \"isofix\" }\n";
        assert_eq!(renamed(manifest).as_deref(), Some("q-iso"));
    }

    #[test]
    fn target_tables() {
        let manifest = r#"
            [target.'cfg(unix)'.dev-dependencies]
            unix-iso = { package = "isofix", path = "../isofix" }

            [target."x86_64-pc-windows-msvc".dependencies.win-iso]
            package = "isofix"
        "#;
        // Regular dependencies, even target-specific ones, win over dev-dependencies.
        assert_eq!(renamed(manifest).as_deref(), Some("win-iso"));
    }

    #[test]
    fn regular_dependencies_win() {
        let manifest = r#"
            [dev-dependencies]
            dev-iso = { package = "isofix" }
            [dependencies]
            iso = { package = "isofix" }
        "#;
        assert_eq!(renamed(manifest).as_deref(), Some("iso"));
    }

    #[test]
    fn multi_line_inline_table_and_strings() {
        let manifest = "[dependencies]\nnote = \"\"\"\n[dependencies]\nfake = { package = \"isofix\" }\n\"\"\"\niso = {\n  package = \"isofix\",\n  version = \"0.1\",\n}\n";
        assert_eq!(renamed(manifest).as_deref(), Some("iso"));
    }

    #[test]
    fn other_tables_are_ignored() {
        let manifest = r#"
            [workspace.dependencies]
            ws-iso = { package = "isofix" }
            [[bin]]
            name = "x"
            package = "isofix"
            [package.metadata.dependencies.meta-iso]
            package = "isofix"
        "#;
        assert_eq!(renamed(manifest), None);
    }

    #[test]
    fn a_rename_inherited_from_the_workspace() {
        let root = r#"
            [workspace]
            members = ["app"]

            [workspace.dependencies]
            tokio = "1"
            iso = { package = "isofix", version = "0.1" }
        "#;
        for member in [
            "[dev-dependencies]\niso.workspace = true\n",
            "[dev-dependencies]\niso = { workspace = true, features = [\"tokio\"] }\n",
            "[dev-dependencies.iso]\nworkspace = true\n",
        ] {
            assert_eq!(
                inherited_dependency_name(member, root, "isofix").as_deref(),
                Some("iso"),
                "{member}"
            );
        }
        // Inheriting something else, or not inheriting, is no rename of isofix.
        let member = "[dev-dependencies]\ntokio.workspace = true\niso = \"0.1\"\n";
        assert_eq!(inherited_dependency_name(member, root, "isofix"), None);
        let member = "[dev-dependencies]\niso = { workspace = false }\n";
        assert_eq!(inherited_dependency_name(member, root, "isofix"), None);
    }

    /// A scratch directory tree of real files, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "isofix-macros-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn write(&self, path: &str, text: &str) -> PathBuf {
            let path = self.0.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn finds_the_rename_in_the_workspace_root_above_the_member() {
        let ws = Scratch::new("ws");
        ws.write(
            "Cargo.toml",
            "[workspace]\nmembers = [\"crates/app\"]\n[workspace.dependencies]\niso = { package = \"isofix\", path = \"../isofix\" }\n",
        );
        // A manifest in between that is no workspace root is passed over.
        ws.write("crates/Cargo.toml", "[package]\nname = \"other\"\n");
        let member = ws.write(
            "crates/app/Cargo.toml",
            "[package]\nname = \"app\"\n[dev-dependencies]\niso.workspace = true\n",
        );
        assert_eq!(renamed_in(member.parent().unwrap()).as_deref(), Some("iso"));
    }

    #[test]
    fn finds_the_rename_in_a_root_named_by_package_workspace() {
        let ws = Scratch::new("ws-named");
        ws.write(
            "root/Cargo.toml",
            "[workspace]\n[workspace.dependencies.my-iso]\npackage = \"isofix\"\n",
        );
        let member = ws.write(
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nworkspace = \"../root\"\n[dependencies]\nmy-iso = { workspace = true }\n",
        );
        assert_eq!(
            renamed_in(member.parent().unwrap()).as_deref(),
            Some("my-iso")
        );
    }

    #[test]
    fn a_root_package_inherits_from_its_own_workspace_table() {
        let ws = Scratch::new("ws-self");
        let root = ws.write(
            "Cargo.toml",
            "[package]\nname = \"app\"\n[workspace.dependencies]\niso = { package = \"isofix\" }\n[dev-dependencies]\niso.workspace = true\n",
        );
        assert_eq!(renamed_in(root.parent().unwrap()).as_deref(), Some("iso"));
    }

    #[test]
    fn garbage_does_not_panic() {
        for text in [
            "[",
            "[dependencies]\niso = {",
            "a = \"",
            "'''",
            "[dependencies]\n= =",
            "\u{feff}x",
        ] {
            let _ = renamed(text);
        }
    }
}
