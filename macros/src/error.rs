//! Compile errors that point at the offending tokens.
//!
//! Stable `proc_macro` cannot join two spans, so an error covering several tokens is emitted
//! the way syn does it: the first tokens of `compile_error! { .. }` carry the span of the
//! first offending token and the braces carry the span of the last one, and rustc underlines
//! everything in between.

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// Every accepted form, repeated in each argument error so that the fix is on screen.
pub(crate) const FORMS: &str = "accepted forms: `#[serial_group(\"name\")]`, \
`#[serial_group(\"a\", \"b\")]`, `#[serial_group(\"name\", shared)]`, \
`#[serial_group(\"name\", max = 4)]`; optional after the names: `timeout = 30` (seconds) \
and `crate = \"path::to::isofix\"`";

/// One compile error, spanning the tokens from `start` to `end`.
pub(crate) struct Error {
    start: Span,
    end: Span,
    message: String,
}

impl Error {
    /// An error on a single token.
    pub(crate) fn new(span: Span, message: impl Into<String>) -> Self {
        Self::spanning(span, span, message)
    }

    /// An error on the tokens from `start` to `end`.
    pub(crate) fn spanning(start: Span, end: Span, message: impl Into<String>) -> Self {
        Self {
            start,
            end,
            message: message.into(),
        }
    }

    /// An error about the attribute's arguments: the message, then the accepted forms.
    pub(crate) fn args(start: Span, end: Span, message: impl std::fmt::Display) -> Self {
        Self::spanning(start, end, format!("{message}\n{FORMS}"))
    }

    /// `::core::compile_error! { "message" }`, usable where an item is expected.
    pub(crate) fn into_compile_error(self) -> TokenStream {
        let start = self.start;
        let joint = |c| TokenTree::Punct(with_span(Punct::new(c, Spacing::Joint), start));
        let alone = |c| TokenTree::Punct(with_span(Punct::new(c, Spacing::Alone), start));
        let mut message = TokenTree::Literal(Literal::string(&self.message));
        message.set_span(self.end);
        let mut body = Group::new(Delimiter::Brace, TokenStream::from(message));
        body.set_span(self.end);
        TokenStream::from_iter([
            joint(':'),
            alone(':'),
            TokenTree::Ident(Ident::new("core", start)),
            joint(':'),
            alone(':'),
            TokenTree::Ident(Ident::new("compile_error", start)),
            alone('!'),
            TokenTree::Group(body),
        ])
    }
}

fn with_span(mut punct: Punct, span: Span) -> Punct {
    punct.set_span(span);
    punct
}
