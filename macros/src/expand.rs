//! The expansion: merge stacked attributes, then put the acquisition first in the body.

use proc_macro::{Span, TokenStream, TokenTree};

use crate::args::{Args, Mode};
use crate::error::Error;
use crate::item::FnItem;

/// The name of the local that holds the guard. It is given a `mixed_site` span, so the
/// function's own code can neither see nor shadow it.
const GUARD: &str = "__isofix_serial_guard";

/// Expands `#[serial_group(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> Result<TokenStream, Error> {
    let mut args = Args::parse(args, Span::call_site())?;
    let mut item = FnItem::parse(item)?;
    for stacked in item.take_stacked() {
        let inner = Args::parse(stacked.args, stacked.span)?;
        merge(&mut args, inner)?;
    }
    let root = match &args.krate {
        Some((path, _)) => path.clone(),
        None => "::isofix".to_owned(),
    };
    if item.is_async {
        // Above a runtime attribute, the groups must outlive the runtime, whose tasks (a
        // server and its listener) live on after the body: move beneath it, onto the plain
        // `fn` it generates, which takes the groups before the runtime starts.
        if let Some(at) = item.runtime_attribute() {
            return Ok(item.with_attribute_after(at, reemitted(&args, &root)));
        }
    }
    let statement = guard_statement(&args, &root, item.is_async);
    Ok(item.with_first_statement(statement))
}

/// `#[<root>::serial_group(..)]` with the (merged) arguments.
fn reemitted(args: &Args, root: &str) -> TokenStream {
    let mut parts: Vec<String> = args.groups.iter().map(|g| format!("{g:?}")).collect();
    match args.mode.0 {
        Mode::Exclusive => {}
        Mode::Shared => parts.push("shared".to_owned()),
        Mode::Max(n) => parts.push(format!("max = {n}")),
    }
    if let Some((seconds, _)) = args.timeout {
        parts.push(format!("timeout = {seconds}"));
    }
    if args.krate.is_some() {
        parts.push(format!("crate = {root:?}"));
    }
    format!("#[{root}::serial_group({})]", parts.join(", "))
        .parse()
        .expect("the attribute is valid Rust")
}

/// Folds a second `#[serial_group]` of the same function into the first, so that all the
/// groups are taken in one acquisition (in the runtime's canonical order, which is what
/// rules out deadlocks between tests that stack the same groups in different orders).
fn merge(outer: &mut Args, inner: Args) -> Result<(), Error> {
    if outer.mode.0 != inner.mode.0 {
        let span = inner.mode.1.unwrap_or(inner.span);
        return Err(Error::args(
            span,
            span,
            format!(
                "stacked #[serial_group] attributes are merged into one acquisition, so they \
                 must hold their groups the same way: this one is {}, the one above is {}",
                inner.mode.0.describe(),
                outer.mode.0.describe()
            ),
        ));
    }
    if let Some((seconds, span)) = inner.timeout {
        if outer.timeout.is_some() {
            return Err(Error::args(
                span,
                span,
                "`timeout` is given in two stacked #[serial_group] attributes; give it once",
            ));
        }
        outer.timeout = Some((seconds, span));
    }
    if let Some((path, span)) = inner.krate {
        if outer
            .krate
            .as_ref()
            .is_some_and(|(outer, _)| *outer != path)
        {
            return Err(Error::args(
                span,
                span,
                "stacked #[serial_group] attributes name two different `crate` paths",
            ));
        }
        outer.krate = Some((path, span));
    }
    for group in inner.groups {
        if !outer.groups.contains(&group) {
            outer.groups.push(group);
        }
    }
    Ok(())
}

/// `let __isofix_serial_guard = <root>::__private::enter(<builder>);`, or for an `async fn`
/// `let __isofix_serial_guard = <root>::__private::enter_async(<builder>).await;`, where
/// `<builder>` is `<root>::__private::serial_builder(&["a", "b"])` followed by the options:
/// `.shared()`, `.max_holders(N)`, `.timeout(::core::time::Duration::from_secs(S))`.
fn guard_statement(args: &Args, root: &str, is_async: bool) -> TokenStream {
    let names: Vec<String> = args.groups.iter().map(|g| format!("{g:?}")).collect();
    let mut builder = format!("{root}::__private::serial_builder(&[{}])", names.join(", "));
    match args.mode.0 {
        Mode::Exclusive => {}
        Mode::Shared => builder.push_str(".shared()"),
        Mode::Max(n) => builder.push_str(&format!(".max_holders({n})")),
    }
    if let Some((seconds, _)) = args.timeout {
        builder.push_str(&format!(
            ".timeout(::core::time::Duration::from_secs({seconds}))"
        ));
    }
    let acquire = if is_async {
        format!("{root}::__private::enter_async({builder}).await")
    } else {
        format!("{root}::__private::enter({builder})")
    };
    let statement: TokenStream = format!("let {GUARD} = {acquire};")
        .parse()
        .expect("the guard statement is valid Rust");
    statement
        .into_iter()
        .map(|mut token| {
            if matches!(&token, TokenTree::Ident(i) if i.to_string() == GUARD) {
                token.set_span(Span::mixed_site());
            }
            token
        })
        .collect()
}
