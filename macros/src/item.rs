//! The annotated item: a function with a body, split just enough to find its qualifiers,
//! its outer attributes and its body.

use proc_macro::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};

use crate::error::Error;

/// A function item as tokens, with what the expansion needs to know about it.
pub(crate) struct FnItem {
    tokens: Vec<TokenTree>,
    /// The index of the `#` of each outer attribute (its bracketed group follows).
    attributes: Vec<usize>,
    pub(crate) is_async: bool,
}

/// Another `#[serial_group(..)]` (under any path) found on the same function.
pub(crate) struct Stacked {
    /// The span of its `serial_group` name, for errors about it as a whole.
    pub(crate) span: Span,
    pub(crate) args: TokenStream,
}

impl FnItem {
    /// Checks that `item` is a function with a body.
    pub(crate) fn parse(item: TokenStream) -> Result<FnItem, Error> {
        let mut tokens = invisible_group_contents(item.into_iter().collect());
        // A `$body:block` fragment of `macro_rules!` arrives as an invisible group.
        if let Some(last) = tokens.pop() {
            tokens.extend(invisible_group_contents(vec![last]));
        }
        let attributes = outer_attributes(&tokens);
        let mut i = attributes.last().map_or(0, |at| at + 2);
        let mut is_async = false;
        loop {
            let Some(token) = tokens.get(i) else {
                return Err(not_a_function(Span::call_site(), "nothing"));
            };
            let ident = match token {
                TokenTree::Ident(ident) => ident,
                // A `$vis:vis` fragment of `macro_rules!`.
                TokenTree::Group(g) if g.delimiter() == Delimiter::None => {
                    i += 1;
                    continue;
                }
                _ => return Err(not_a_function(token.span(), &token.to_string())),
            };
            match ident.to_string().as_str() {
                "fn" => break,
                "pub" => {
                    if let Some(TokenTree::Group(g)) = tokens.get(i + 1) {
                        if g.delimiter() == Delimiter::Parenthesis {
                            i += 1;
                        }
                    }
                }
                "extern" => {
                    if let Some(TokenTree::Literal(_)) = tokens.get(i + 1) {
                        i += 1;
                    }
                }
                "async" => is_async = true,
                "unsafe" | "default" | "safe" => {}
                "const" => {
                    return Err(Error::new(
                        ident.span(),
                        "#[serial_group] cannot go on a `const fn`: taking a lock is not a \
                         const operation",
                    ))
                }
                other => return Err(not_a_function(ident.span(), &format!("`{other}`"))),
            }
            i += 1;
        }
        match tokens.last() {
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {}
            last => {
                let span = last.map_or(Span::call_site(), TokenTree::span);
                return Err(Error::new(
                    span,
                    "#[serial_group] needs a function with a body, to hold the groups while it runs",
                ));
            }
        }
        Ok(FnItem {
            tokens,
            attributes,
            is_async,
        })
    }

    /// Removes the other `#[serial_group(..)]` attributes of the function and returns them,
    /// in source order, so that their groups are taken in one acquisition.
    pub(crate) fn take_stacked(&mut self) -> Vec<Stacked> {
        let mut stacked = Vec::new();
        let mut removed = Vec::new();
        for &at in &self.attributes {
            let TokenTree::Group(g) = &self.tokens[at + 1] else {
                continue;
            };
            if let Some(found) = as_serial_group(g) {
                stacked.push(found);
                removed.push(at);
            }
        }
        for &at in removed.iter().rev() {
            self.tokens.drain(at..at + 2);
        }
        self.attributes = outer_attributes(&self.tokens);
        stacked
    }

    /// The index of the first attribute that runs an async test on a runtime it builds and
    /// drops (`#[tokio::test]`, `#[sqlx::test]`, `#[test_log::test]`...): any attribute whose
    /// path has two segments or more and ends in `test`.
    pub(crate) fn runtime_attribute(&self) -> Option<usize> {
        self.attributes.iter().copied().find(|&at| {
            let TokenTree::Group(g) = &self.tokens[at + 1] else {
                return false;
            };
            let (path, _) = attribute_path(g);
            path.len() >= 2 && path.last().is_some_and(|last| last.to_string() == "test")
        })
    }

    /// The function as written, with `attribute` inserted right after the attribute at
    /// `at`, so that it is expanded on what that attribute generates.
    pub(crate) fn with_attribute_after(mut self, at: usize, attribute: TokenStream) -> TokenStream {
        let rest = self.tokens.split_off(at + 2);
        let mut stream: TokenStream = self.tokens.into_iter().collect();
        stream.extend(attribute);
        stream.extend(rest);
        stream
    }

    /// The function with `statement` as the first statement of its body (after any inner
    /// attributes such as `#![allow(..)]`, which must stay first).
    pub(crate) fn with_first_statement(mut self, statement: TokenStream) -> TokenStream {
        let Some(TokenTree::Group(body)) = self.tokens.pop() else {
            unreachable!("checked by FnItem::parse");
        };
        let inner: Vec<TokenTree> = body.stream().into_iter().collect();
        let mut split = 0;
        while let (
            Some(TokenTree::Punct(hash)),
            Some(TokenTree::Punct(bang)),
            Some(TokenTree::Group(g)),
        ) = (inner.get(split), inner.get(split + 1), inner.get(split + 2))
        {
            if hash.as_char() != '#' || bang.as_char() != '!' || g.delimiter() != Delimiter::Bracket
            {
                break;
            }
            split += 3;
        }
        let mut stream: TokenStream = inner[..split].iter().cloned().collect();
        stream.extend(statement);
        stream.extend(inner[split..].iter().cloned());
        let mut new_body = Group::new(Delimiter::Brace, stream);
        new_body.set_span(body.span());
        self.tokens.push(TokenTree::Group(new_body));
        self.tokens.into_iter().collect()
    }
}

/// `Some` when the bracketed attribute is `#[serial_group(..)]` under any path
/// (`serial_group`, `isofix::serial_group`, a renamed crate's path...).
fn as_serial_group(attribute: &Group) -> Option<Stacked> {
    let (mut path, i) = attribute_path(attribute);
    let name = path.pop().filter(|n| n.to_string() == "serial_group")?;
    let tokens: Vec<TokenTree> = attribute.stream().into_iter().collect();
    let args = match &tokens[i..] {
        [] => TokenStream::new(),
        [TokenTree::Group(g)] if g.delimiter() == Delimiter::Parenthesis => g.stream(),
        _ => return None,
    };
    Some(Stacked {
        span: name.span(),
        args,
    })
}

/// The path of a bracketed attribute (`tokio::test` in `#[tokio::test(..)]`) as its
/// segments, and the index of the first token after it.
fn attribute_path(attribute: &Group) -> (Vec<Ident>, usize) {
    let mut path = Vec::new();
    let mut i = 0;
    for token in attribute.stream() {
        match token {
            TokenTree::Punct(p) if p.as_char() == ':' => {}
            TokenTree::Ident(ident) => path.push(ident),
            _ => break,
        }
        i += 1;
    }
    (path, i)
}

/// The index of the `#` of each outer attribute at the start of `tokens` (its bracketed
/// group follows).
fn outer_attributes(tokens: &[TokenTree]) -> Vec<usize> {
    let mut attributes = Vec::new();
    let mut i = 0;
    while let (Some(TokenTree::Punct(p)), Some(TokenTree::Group(g))) =
        (tokens.get(i), tokens.get(i + 1))
    {
        if p.as_char() != '#' || g.delimiter() != Delimiter::Bracket {
            break;
        }
        attributes.push(i);
        i += 2;
    }
    attributes
}

/// What a `macro_rules!` fragment (`$item:item`, `$body:block`) wrapped in an invisible
/// group holds; other tokens as they are.
fn invisible_group_contents(tokens: Vec<TokenTree>) -> Vec<TokenTree> {
    match tokens.as_slice() {
        [TokenTree::Group(g)] if g.delimiter() == Delimiter::None => {
            g.stream().into_iter().collect()
        }
        _ => tokens,
    }
}

fn not_a_function(span: Span, found: &str) -> Error {
    Error::new(
        span,
        format!(
            "#[serial_group] goes on a function with a body (`fn` or `async fn`, a test, a \
             helper or a method), found {found}"
        ),
    )
}
