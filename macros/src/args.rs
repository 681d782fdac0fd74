//! Parsing of the attribute's arguments: `"name", ..., shared | max = N, timeout = S, crate = "path"`.

use proc_macro::{Delimiter, Spacing, Span, TokenStream, TokenTree};

use crate::error::Error;

/// How the groups are held.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// One holder at a time (the default).
    Exclusive,
    /// Any number of `shared` holders, and no exclusive one meanwhile.
    Shared,
    /// At most this many holders at once.
    Max(usize),
}

impl Mode {
    pub(crate) fn describe(self) -> String {
        match self {
            Mode::Exclusive => "exclusive (no `shared` or `max`)".to_owned(),
            Mode::Shared => "`shared`".to_owned(),
            Mode::Max(n) => format!("`max = {n}`"),
        }
    }
}

/// The parsed arguments of one `#[serial_group(..)]`.
pub(crate) struct Args {
    /// Where to point errors about the attribute as a whole.
    pub(crate) span: Span,
    /// The group names, in the order written.
    pub(crate) groups: Vec<String>,
    /// The mode and, when it was written out, the span of the option that chose it.
    pub(crate) mode: (Mode, Option<Span>),
    /// Seconds to wait at most, and the span of the option.
    pub(crate) timeout: Option<(u64, Span)>,
    /// The `crate = "..."` path as written (validated), and the span of its literal.
    pub(crate) krate: Option<(String, Span)>,
}

impl Args {
    /// Parses the arguments of an attribute; `span` points at the attribute itself, for
    /// errors that concern it as a whole (no arguments at all).
    pub(crate) fn parse(input: TokenStream, span: Span) -> Result<Args, Error> {
        let mut args = Args {
            span,
            groups: Vec::new(),
            mode: (Mode::Exclusive, None),
            timeout: None,
            krate: None,
        };
        let mut segment = Vec::new();
        for token in input {
            match &token {
                TokenTree::Punct(p) if p.as_char() == ',' => {
                    if segment.is_empty() {
                        return Err(Error::args(
                            p.span(),
                            p.span(),
                            "expected an argument before this comma",
                        ));
                    }
                    args.add(std::mem::take(&mut segment))?;
                }
                _ => segment.push(token),
            }
        }
        if !segment.is_empty() {
            args.add(segment)?;
        }
        if args.groups.is_empty() {
            let message = "#[serial_group] needs at least one group name, as a string literal";
            return Err(Error::args(span, span, message));
        }
        Ok(args)
    }

    /// Adds one comma-separated argument.
    fn add(&mut self, segment: Vec<TokenTree>) -> Result<(), Error> {
        let start = segment[0].span();
        let end = segment[segment.len() - 1].span();
        match segment.as_slice() {
            [TokenTree::Literal(_)] => self.add_group(&segment[0]),
            [TokenTree::Group(g)] if g.delimiter() == Delimiter::None => {
                // A literal passed through a `macro_rules!` fragment arrives wrapped in an
                // invisible group; look inside.
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                if inner.len() == 1 {
                    self.add(inner)
                } else {
                    Err(not_an_argument(start, end))
                }
            }
            [TokenTree::Ident(i)] => {
                let name = i.to_string();
                match name.as_str() {
                    "shared" => self.set_mode(Mode::Shared, i.span()),
                    "max" | "timeout" | "crate" => Err(Error::args(
                        start,
                        end,
                        format!(
                            "`{name}` needs a value, as in `{name} = {}`",
                            example(&name)
                        ),
                    )),
                    _ => Err(Error::args(
                        start,
                        end,
                        format!(
                            "unknown option `{name}`; group names are string literals: `\"{name}\"`"
                        ),
                    )),
                }
            }
            [TokenTree::Ident(key), TokenTree::Punct(eq), value @ ..]
                if eq.as_char() == '=' && eq.spacing() == Spacing::Alone =>
            {
                let key_name = key.to_string();
                let value_span = value.first().map_or(eq.span(), TokenTree::span);
                let value = without_invisible_group(value);
                let literal = match value.as_slice() {
                    [TokenTree::Literal(_)] => Some(&value[0]),
                    _ => None,
                };
                match key_name.as_str() {
                    "max" => {
                        let n = integer(literal, value_span, end, "max")?;
                        if n == 0 {
                            return Err(Error::args(
                                value_span,
                                end,
                                "`max = 0` would let no test in; use `max = 1` or more",
                            ));
                        }
                        let n = usize::try_from(n).map_err(|_| {
                            Error::args(value_span, end, "`max` is too large for this platform")
                        })?;
                        self.set_mode(Mode::Max(n), key.span())
                    }
                    "timeout" => {
                        let seconds = integer(literal, value_span, end, "timeout")?;
                        if seconds == 0 {
                            return Err(Error::args(
                                value_span,
                                end,
                                "`timeout = 0` would fail whenever the group is busy; give at least 1 second",
                            ));
                        }
                        if self.timeout.is_some() {
                            return Err(duplicate_option(key.span(), end, "timeout"));
                        }
                        self.timeout = Some((seconds, key.span()));
                        Ok(())
                    }
                    "crate" => {
                        let path = crate_path(literal, value_span, end)?;
                        if self.krate.is_some() {
                            return Err(duplicate_option(key.span(), end, "crate"));
                        }
                        self.krate = Some((path, value_span));
                        Ok(())
                    }
                    "shared" => Err(Error::args(
                        start,
                        end,
                        "`shared` takes no value: write just `shared`",
                    )),
                    _ => Err(Error::args(
                        key.span(),
                        key.span(),
                        format!("unknown option `{key_name}`"),
                    )),
                }
            }
            _ => Err(not_an_argument(start, end)),
        }
    }

    fn add_group(&mut self, token: &TokenTree) -> Result<(), Error> {
        let span = token.span();
        let value = string_value(token).map_err(|why| Error::args(span, span, why))?;
        if value.is_empty() {
            return Err(Error::args(span, span, "a group name cannot be empty"));
        }
        if self.groups.contains(&value) {
            return Err(Error::args(
                span,
                span,
                format!("group \"{value}\" is named twice"),
            ));
        }
        self.groups.push(value);
        Ok(())
    }

    fn set_mode(&mut self, mode: Mode, span: Span) -> Result<(), Error> {
        match self.mode {
            (Mode::Exclusive, None) => {
                self.mode = (mode, Some(span));
                Ok(())
            }
            (old, _) if std::mem::discriminant(&old) == std::mem::discriminant(&mode) => {
                let name = if mode == Mode::Shared {
                    "shared"
                } else {
                    "max"
                };
                Err(duplicate_option(span, span, name))
            }
            (old, _) => Err(Error::args(
                span,
                span,
                format!(
                    "{} and {} are different modes; give one of them",
                    old.describe(),
                    mode.describe()
                ),
            )),
        }
    }
}

/// The tokens inside a `macro_rules!` fragment's invisible group, or the tokens as they are.
fn without_invisible_group(tokens: &[TokenTree]) -> Vec<TokenTree> {
    match tokens {
        [TokenTree::Group(g)] if g.delimiter() == Delimiter::None => {
            g.stream().into_iter().collect()
        }
        _ => tokens.to_vec(),
    }
}

fn example(option: &str) -> &'static str {
    match option {
        "max" => "4",
        "timeout" => "30",
        _ => "\"::isofix\"",
    }
}

fn not_an_argument(start: Span, end: Span) -> Error {
    Error::args(
        start,
        end,
        "expected a group name as a string literal, or an option",
    )
}

fn duplicate_option(start: Span, end: Span, name: &str) -> Error {
    Error::args(start, end, format!("`{name}` is given twice"))
}

/// The value of a plain or raw string literal, escapes resolved as rustc resolves them; the
/// reason it is not one otherwise.
fn string_value(token: &TokenTree) -> Result<String, String> {
    let text = token.to_string();
    let not_a_string =
        || format!("expected a group name as a string literal, found `{text}`; write `\"{text}\"`");
    let TokenTree::Literal(_) = token else {
        return Err(not_a_string());
    };
    if let Some(rest) = text.strip_prefix('r') {
        let hashes = rest.len() - rest.trim_start_matches('#').len();
        let closing = format!("\"{}", "#".repeat(hashes));
        let body = &rest[hashes..];
        return match body
            .strip_prefix('"')
            .and_then(|b| b.strip_suffix(closing.as_str()))
        {
            Some(value) => Ok(value.to_owned()),
            None => Err(format!(
                "string literals with a suffix are not group names: `{text}`"
            )),
        };
    }
    if text.starts_with(['b', 'c']) {
        return Err(format!(
            "group names are text, so they are plain string literals, not `{text}`"
        ));
    }
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(value) => unescape(value).ok_or_else(|| {
            format!("the escape sequences of `{text}` are not valid in a string literal")
        }),
        None if text.starts_with('"') => Err(format!(
            "string literals with a suffix are not group names: `{text}`"
        )),
        None => Err(not_a_string()),
    }
}

/// The text of a (non-raw) string literal's body with its escapes resolved: `\n`, `\r`,
/// `\t`, `\\`, `\0`, `\'`, `\"`, `\x` (up to 7F), `\u{..}` and a line continuation
/// (`\` at the end of a line skips the line break and the next line's leading whitespace).
/// `None` for an escape rustc would refuse too.
fn unescape(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            '0' => out.push('\0'),
            e @ ('\\' | '\'' | '"') => out.push(e),
            'x' => {
                let hex: String = [chars.next()?, chars.next()?].iter().collect();
                let byte = u8::from_str_radix(&hex, 16).ok().filter(u8::is_ascii)?;
                out.push(char::from(byte));
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let mut hex = String::new();
                loop {
                    match chars.next()? {
                        '}' => break,
                        '_' => {}
                        d => hex.push(d),
                    }
                }
                if hex.is_empty() || hex.len() > 6 {
                    return None;
                }
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            '\n' | '\r' => {
                while chars
                    .next_if(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
                    .is_some()
                {}
            }
            _ => return None,
        }
    }
    Some(out)
}

const SUFFIXES: [&str; 13] = [
    "", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
];

/// A decimal integer literal, with or without an integer suffix.
fn integer(
    literal: Option<&TokenTree>,
    start: Span,
    end: Span,
    option: &str,
) -> Result<u64, Error> {
    let expected = || {
        Error::args(
            start,
            end,
            format!(
                "`{option}` takes a whole number, as in `{option} = {}`",
                example(option)
            ),
        )
    };
    let text = literal.ok_or_else(expected)?.to_string();
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    if digits.is_empty() || !SUFFIXES.contains(&suffix) || text.starts_with("0x") {
        return Err(expected());
    }
    digits
        .replace('_', "")
        .parse()
        .map_err(|_| Error::args(start, end, format!("`{option}` is too large")))
}

/// The path of `crate = "path"`, checked to be a plain path such as `::isofix`, and
/// rebuilt from its tokens: the string may hold comments, and a `//` one copied into the
/// generated statement would swallow the rest of it.
fn crate_path(literal: Option<&TokenTree>, start: Span, end: Span) -> Result<String, Error> {
    let invalid = || {
        Error::args(
            start,
            end,
            "`crate` takes the path to the isofix crate as a string, as in `crate = \"::isofix\"`",
        )
    };
    let value = string_value(literal.ok_or_else(invalid)?).map_err(|_| invalid())?;
    let tokens: Vec<TokenTree> = value
        .parse::<TokenStream>()
        .map_err(|_| invalid())?
        .into_iter()
        .collect();
    // `::`? ident (`::` ident)*
    let mut expect_ident = !matches!(tokens.first(), Some(TokenTree::Punct(_)));
    let mut path = String::new();
    let mut i = 0;
    while i < tokens.len() {
        if expect_ident {
            let TokenTree::Ident(ident) = &tokens[i] else {
                return Err(invalid());
            };
            path.push_str(&ident.to_string());
            i += 1;
        } else {
            match (&tokens[i], tokens.get(i + 1)) {
                (TokenTree::Punct(a), Some(TokenTree::Punct(b)))
                    if a.as_char() == ':'
                        && b.as_char() == ':'
                        && a.spacing() == Spacing::Joint =>
                {
                    path.push_str("::");
                    i += 2;
                }
                _ => return Err(invalid()),
            }
        }
        expect_ident = !expect_ident;
    }
    if expect_ident || tokens.is_empty() {
        return Err(invalid());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn resolves_every_escape_rustc_accepts() {
        assert_eq!(unescape(r#"a\"b"#).as_deref(), Some("a\"b"));
        assert_eq!(unescape(r"\n\r\t\\\0\'").as_deref(), Some("\n\r\t\\\0'"));
        assert_eq!(unescape(r"\x41\x7f").as_deref(), Some("A\x7f"));
        assert_eq!(unescape(r"\u{e9}\u{1F6_00}").as_deref(), Some("é\u{1F600}"));
        assert_eq!(unescape("a\\\n   \t b").as_deref(), Some("ab"));
        assert_eq!(unescape("a\\\r\n  b").as_deref(), Some("ab"));
        assert_eq!(unescape("plain").as_deref(), Some("plain"));
    }

    #[test]
    fn refuses_what_rustc_refuses() {
        for bad in [
            r"\q",
            r"\x80",
            r"\x4",
            r"\u{D800}",
            r"\u{110000}",
            r"\u{}",
            r"\u{1234567}",
            r"\u41",
            "\\",
        ] {
            assert_eq!(unescape(bad), None, "{bad:?}");
        }
    }
}
