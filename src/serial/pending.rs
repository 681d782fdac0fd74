//! A request that waits on a helper thread, so that its caller can stop waiting: at a
//! timeout, or when an async caller drops its future.
//!
//! The helper blocks in `flock` and hands the held group over through a shared slot. If
//! nobody is there to take it any more, the helper drops it at once, which releases it:
//! a request given up never leaves a lock behind, and never leaves one stuck for longer
//! than the current holder keeps it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::acquire::acquire_blocking;
use super::held::Held;
use super::name::GroupFiles;
use super::watchdog::{self, Wait, Watching};
use crate::common::error::wrap;

/// The hand-over slot between the helper, the watchdog and the caller.
#[derive(Default)]
pub(crate) struct Pending {
    slot: Mutex<Slot>,
    done: Condvar,
}

#[derive(Default)]
struct Slot {
    outcome: Option<io::Result<Held>>,
    /// Nobody will take a late success: release it.
    abandoned: bool,
    waker: Option<Waker>,
}

impl Pending {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finish(&self, mut slot: MutexGuard<'_, Slot>, outcome: io::Result<Held>) {
        slot.outcome = Some(outcome);
        let waker = slot.waker.take();
        drop(slot);
        self.done.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The helper's result; dropped (so released) if the request was given up.
    fn deliver(&self, outcome: io::Result<Held>) {
        let slot = self.slot();
        if slot.abandoned || slot.outcome.is_some() {
            drop(slot);
            drop(outcome);
            return;
        }
        self.finish(slot, outcome);
    }

    /// The watchdog's verdict: fails the request unless it already succeeded.
    pub(crate) fn time_out(&self, err: io::Error) {
        let mut slot = self.slot();
        if slot.abandoned || slot.outcome.is_some() {
            return;
        }
        slot.abandoned = true;
        self.finish(slot, Err(err));
    }
}

/// Starts waiting for `files` on a helper thread, under the watchdog's deadlines.
pub(crate) fn start(files: Arc<GroupFiles>, wait: Arc<Wait>) -> io::Result<Waiting> {
    let pending = Arc::new(Pending::default());
    let watching = watchdog::watch(&wait, &files, Some(Arc::clone(&pending)))?;
    let waiting = Waiting {
        pending: Arc::clone(&pending),
        _watching: watching,
    };
    let group = files.group.clone();
    std::thread::Builder::new()
        .name("isofix-serial-wait".to_owned())
        .spawn(move || pending.deliver(acquire_blocking(&files, wait.mode, &wait.holder)))
        .map_err(|e| {
            wrap(
                e,
                format_args!("start a thread to wait for serial group {group:?}"),
                "the process may be out of threads",
            )
        })?;
    Ok(waiting)
}

/// The caller's end: block on it with [`Waiting::wait`], or `.await` it.
pub(crate) struct Waiting {
    pending: Arc<Pending>,
    _watching: Watching,
}

impl Waiting {
    /// Blocks the calling thread until the helper or the watchdog decides.
    pub(crate) fn wait(self) -> io::Result<Held> {
        let mut slot = self.pending.slot();
        loop {
            if let Some(outcome) = slot.outcome.take() {
                return outcome;
            }
            slot = self
                .pending
                .done
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Future for Waiting {
    type Output = io::Result<Held>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.pending.slot();
        if let Some(outcome) = slot.outcome.take() {
            return Poll::Ready(outcome);
        }
        match &mut slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut slot = self.pending.slot();
        slot.abandoned = true;
        slot.waker = None;
        let outcome = slot.outcome.take();
        drop(slot);
        // A success not taken yet is released here, outside the slot's lock.
        drop(outcome);
    }
}
