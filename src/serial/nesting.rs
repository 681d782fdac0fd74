//! Groups held by this process: per-thread nesting, and the shared holds that let a
//! shared request skip the gate (see [`super::protocol`]).
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

/// What live guards hold, with the thread that took it (`None` for an async acquisition,
/// which does not nest: tasks move between threads).
type List = Vec<(Option<ThreadId>, Weak<Held>)>;

static HELD: Mutex<List> = Mutex::new(Vec::new());

fn live<R>(f: impl FnOnce(&mut List) -> R) -> R {
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut held)
}

/// The guard of the calling thread for the group, if it holds it, shared out (counted);
/// an error if `mode` would need more than the thread holds.
pub(crate) fn reenter(dir: &LockDir, stem: &str, mode: Mode) -> io::Result<Option<Arc<Held>>> {
    let me = Some(thread::current().id());
    let found = live(|held| {
        held.iter()
            .filter(|(thread, _)| *thread == me)
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

/// Records that the calling thread (or, if `task`, an async task) holds `held`; forgets
/// what dropped guards held.
pub(crate) fn register(held: Held, task: bool) -> Arc<Held> {
    let held = Arc::new(held);
    let thread = match task {
        true => None,
        false => Some(thread::current().id()),
    };
    live(|list| {
        list.retain(|(_, h)| h.strong_count() > 0);
        list.push((thread, Arc::downgrade(&held)));
    });
    held
}
