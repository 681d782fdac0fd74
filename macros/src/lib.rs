//! STUB (issue 4): the `#[serial_group]` attribute.
use proc_macro::TokenStream;

/// STUB.
#[proc_macro_attribute]
pub fn serial_group(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
