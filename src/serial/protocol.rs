//! The lock protocol of one group, over plain `flock`s the kernel releases when the holder
//! dies, on files of the lock directory's layout `v1/`:
//!
//! - exclusive: lock `<stem>.lock` exclusively;
//! - shared: lock `<stem>.lock` shared;
//! - at most N: lock `<stem>.lock` shared and one of `<stem>.slot<i>`, i < N, exclusively.
//!
//! A request that has to wait queues on the gate, `<stem>.gate`: it holds it exclusively
//! while it waits and lets go once it has the lock. Every shared or limited request takes
//! the gate before the lock, even when it need not wait, so a waiting exclusive request
//! keeps new readers out and a stream of them cannot starve it. An uncontended exclusive
//! request skips the gate: it gets in only when nobody holds the lock, which is when a
//! queued request would have got in too.
//!
//! One exception: a shared or limited request for a group its own process already holds
//! shared or limited skips the gate (see [`super::nesting`]). Queuing behind a writer that
//! waits for this very process would wait forever if the holder waits for the request
//! (a thread holding a group joins one that asks for it).
//!
//! Files are unlocked on release and kept in the lock directory's small pool for the next
//! acquisition (see [`super::lock_dir`]): a process keeps a bounded number of descriptors
//! for groups it does not hold, whatever the number of groups.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::lock_dir::{LockDir, LockFile};
use crate::common::error::error;
use crate::common::file_lock::LockMode;

/// How a group is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Alone.
    Exclusive,
    /// With any number of other shared holders.
    Shared,
    /// With at most this many other limited holders.
    Limited(usize),
}

impl Mode {
    /// How messages name the mode.
    pub(crate) fn describe(self) -> String {
        match self {
            Mode::Exclusive => "exclusively".to_owned(),
            Mode::Shared => "shared".to_owned(),
            Mode::Limited(n) => format!("as one of at most {n} holders"),
        }
    }

    /// How records name the mode: `slot-<i>/<n>` once slot `i` (from 0) is held.
    pub(crate) fn record(self, slot: Option<usize>) -> Cow<'static, str> {
        match (self, slot) {
            (Mode::Exclusive, _) => "exclusive".into(),
            (Mode::Shared, _) => "shared".into(),
            (Mode::Limited(n), Some(i)) => format!("slot-{}/{n}", i + 1).into(),
            (Mode::Limited(n), None) => format!("max-{n}").into(),
        }
    }

    fn main_lock(self) -> LockMode {
        match self {
            Mode::Exclusive => LockMode::Exclusive,
            Mode::Shared | Mode::Limited(_) => LockMode::Shared,
        }
    }
}

/// The locked files of a held group; closing them releases the group.
#[derive(Debug)]
pub(crate) struct Locks {
    // Dropped in this order: the slot before the lock.
    _slot: Option<LockFile>,
    _main: LockFile,
    /// The slot held, for the record.
    pub(crate) slot_index: Option<usize>,
}

/// Longest pause between two looks of a polled wait: see [`Attempt::step`].
pub(crate) const POLL_MAX: Duration = Duration::from_millis(2);

/// One request for a group, taken step by step: it keeps what it has locked so far (its
/// place on the gate, the lock) between steps, and gives everything up when dropped.
#[derive(Debug)]
pub(crate) struct Attempt {
    mode: Mode,
    skip_gate: bool,
    /// Whether to queue on the gate before the lock.
    queued: bool,
    gate: Option<LockFile>,
    main: Option<LockFile>,
}

fn open(dir: &Arc<LockDir>, stem: &str, ext: &str) -> io::Result<LockFile> {
    dir.open_file(format!("{stem}.{ext}"))
}

/// Locks `<stem>.<ext>` in `mode`, blocking if `block`; `None` if it is busy. A file
/// removed while this process had it open (with the lock directory, or alone by a
/// temp-file cleaner) excludes nobody who opens the name afresh: it is opened again.
fn lock_named(
    dir: &Arc<LockDir>,
    stem: &str,
    ext: &str,
    mode: LockMode,
    block: bool,
) -> io::Result<Option<LockFile>> {
    for _ in 0..3 {
        let mut file = open(dir, stem, ext)?;
        if !file.lock(mode, block)? {
            return Ok(None);
        }
        if !file.is_unlinked()? {
            return Ok(Some(file));
        }
        dir.still_there()?;
    }
    Err(error(
        io::ErrorKind::Other,
        format_args!(
            "lock {stem}.{ext} in lock directory {}: removed each time this process opened it",
            dir.path().display()
        ),
        "find what deletes files in the lock directory, and stop it",
    ))
}

impl Attempt {
    /// A request in `mode`; `skip_gate` when this process holds the group shared already.
    pub(crate) fn new(mode: Mode, skip_gate: bool) -> Self {
        Self {
            mode,
            skip_gate,
            queued: mode != Mode::Exclusive,
            gate: None,
            main: None,
        }
    }

    /// One try that never blocks: `Some` once everything is held. After a first try that
    /// failed, the request queues on the gate (see the module docs).
    pub(crate) fn step(&mut self, dir: &Arc<LockDir>, stem: &str) -> io::Result<Option<Locks>> {
        self.advance(dir, stem, false)
    }

    /// Takes the group, blocking in the kernel on the gate and the lock. A limited group
    /// whose N slots are all busy is the exception: the kernel cannot block on "any one
    /// of N files", so the gate's holder looks for a free slot every [`POLL_MAX`] at most.
    pub(crate) fn block(&mut self, dir: &Arc<LockDir>, stem: &str) -> io::Result<Locks> {
        let mut pause = Duration::from_micros(50);
        loop {
            if let Some(locks) = self.advance(dir, stem, true)? {
                return Ok(locks);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    fn advance(
        &mut self,
        dir: &Arc<LockDir>,
        stem: &str,
        block: bool,
    ) -> io::Result<Option<Locks>> {
        if self.queued && !self.skip_gate && self.gate.is_none() {
            match lock_named(dir, stem, "gate", LockMode::Exclusive, block)? {
                Some(gate) => self.gate = Some(gate),
                None => return Ok(None),
            }
        }
        if self.main.is_none() {
            match lock_named(dir, stem, "lock", self.mode.main_lock(), block)? {
                Some(main) => self.main = Some(main),
                None => {
                    self.queued = true;
                    return Ok(None);
                }
            }
        }
        let mut slot = None;
        if let Mode::Limited(n) = self.mode {
            for i in 0..n {
                let name = format!("slot{i}");
                if let Some(file) = lock_named(dir, stem, &name, LockMode::Exclusive, false)? {
                    slot = Some((i, file));
                    break;
                }
            }
            if slot.is_none() {
                self.queued = true;
                return Ok(None);
            }
        }
        self.gate = None;
        let (slot_index, slot) = match slot {
            Some((i, file)) => (Some(i), Some(file)),
            None => (None, None),
        };
        Ok(Some(Locks {
            _slot: slot,
            _main: self.main.take().expect("locked above"),
            slot_index,
        }))
    }
}
