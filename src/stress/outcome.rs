//! What a stress body may return.

use std::fmt::Display;

/// The result of one iteration: `()` passes, `Ok(())` passes, `Err(e)` fails with
/// `e.to_string()` as its message. Panics fail too; [`Stress::run`](super::Stress::run)
/// catches them.
///
/// ```
/// use isofix::stress::Outcome;
/// assert!(().into_result().is_ok());
/// assert_eq!(Err::<(), _>("refused").into_result(), Err("refused".to_owned()));
/// ```
pub trait Outcome {
    /// `Ok` for a pass, `Err(message)` for a failure.
    fn into_result(self) -> Result<(), String>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> Outcome for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}
