//! Groups held by this process: nesting on the holds of `#[serial_group]` frames, and the
//! shared holds that let a shared request skip the gate (see [`super::protocol`]).
//!
//! One list for the process, of weak references to what live guards hold: as long as the
//! number of groups held at once, whatever the number of groups ever taken.

use std::io::{self, ErrorKind};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::{self, ThreadId};

use super::lock_dir::LockDir;
use super::protocol::{Locks, Mode};
use super::records::Record;
use crate::common::error::error;

/// One group held in one mode: what a [`SerialGuard`](super::SerialGuard) keeps alive.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) name: String,
    pub(crate) stem: String,
    pub(crate) mode: Mode,
    // Dropped in this order: the record is marked free before the locks go.
    _record: Arc<Record>,
    _locks: Locks,
    pub(crate) dir: Arc<LockDir>,
}

impl Held {
    pub(crate) fn new(
        dir: Arc<LockDir>,
        name: String,
        stem: String,
        mode: Mode,
        locks: Locks,
        record: Arc<Record>,
    ) -> Self {
        Self {
            name,
            stem,
            mode,
            _record: record,
            _locks: locks,
            dir,
        }
    }

    fn is(&self, dir: &LockDir, stem: &str) -> bool {
        self.stem == stem && self.dir.same(dir)
    }
}

/// A hold pinned to a thread's stack: the thread, and a token that lives exactly as long
/// as the frame's guard (not as long as the hold, which nested guards may share and move).
type Frame = (ThreadId, Weak<()>);

/// What live guards hold, with the frame that holds it, if any.
type List = Vec<(Option<Frame>, Weak<Held>)>;

static HELD: Mutex<List> = Mutex::new(Vec::new());

fn live<R>(f: impl FnOnce(&mut List) -> R) -> R {
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut held)
}

/// The frame hold of the group on the calling thread, if there is one, shared out
/// (counted); an error if `mode` would need more than the frame holds.
///
/// Only frame holds nest. A guard of the public API may move to another thread or, held
/// across `.await`, interleave with other tasks on this one; nesting on it would let a
/// second holder in while the first is still inside (std's `ReentrantLock` guards are
/// `!Send` for the same reason). A frame hold cannot move, and a sync function's frame
/// cannot interleave with other work on its thread.
pub(crate) fn reenter(dir: &LockDir, stem: &str, mode: Mode) -> io::Result<Option<Arc<Held>>> {
    let me = thread::current().id();
    let found = live(|held| {
        held.iter()
            .filter(|(frame, _)| {
                matches!(frame, Some((thread, token)) if *thread == me && token.strong_count() > 0)
            })
            .filter_map(|(_, h)| h.upgrade())
            .find(|h| h.is(dir, stem))
    });
    let Some(held) = found else {
        return Ok(None);
    };
    if mode == Mode::Exclusive && held.mode != Mode::Exclusive {
        return Err(error(
            ErrorKind::WouldBlock,
            format_args!(
                "acquire serial group {:?} exclusively: this thread already holds it {}, \
                 and waiting for the other holders to leave could wait for itself forever",
                held.name,
                held.mode.describe()
            ),
            "take the group exclusively in the outer acquisition, or drop the outer guard first",
        ));
    }
    Ok(Some(held))
}

/// Whether this process holds the group shared or limited, on any thread.
pub(crate) fn held_shared(dir: &LockDir, stem: &str) -> bool {
    live(|held| {
        held.iter()
            .filter_map(|(_, h)| h.upgrade())
            .any(|h| h.mode != Mode::Exclusive && h.is(dir, stem))
    })
}

/// Records that this process holds `held`, as a frame hold of the calling thread if
/// `frame` is the token of a frame's guard; forgets what dropped guards held.
pub(crate) fn register(held: Held, frame: Option<&Arc<()>>) -> Arc<Held> {
    let held = Arc::new(held);
    let frame = frame.map(|token| (thread::current().id(), Arc::downgrade(token)));
    live(|list| {
        list.retain(|(_, h)| h.strong_count() > 0);
        list.push((frame, Arc::downgrade(&held)));
    });
    held
}
