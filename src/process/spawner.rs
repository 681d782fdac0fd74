//! Where children are started: on Linux, on one thread of isofix's own that never exits.
//!
//! `PR_SET_PDEATHSIG` signals a child when the *thread* that forked it exits, not when its
//! process does. A child started on a test's thread would be killed as soon as that test
//! ends (libtest runs each test on a thread of its own), guard or not; a child started on
//! a thread that lives as long as the process is killed exactly when the process dies,
//! `SIGKILL` included. So every `ChildGuard` child is started on the spawner thread,
//! started on first use: one thread per process, whatever the number of children.

use std::io;
use std::process::{Child, Command};

/// Starts `command` so that its process gets `SIGKILL` when this process dies (Linux), and
/// gives `command` back as it was, plus the hook that does it (a `pre_exec` hook: it stays
/// on the command). Elsewhere, a plain `spawn`.
pub(crate) fn spawn(command: &mut Command) -> io::Result<Child> {
    #[cfg(target_os = "linux")]
    return linux::spawn(command);
    #[cfg(not(target_os = "linux"))]
    return command.spawn();
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::process::{Child, Command};
    use std::sync::mpsc::{self, Sender};
    use std::sync::{Mutex, PoisonError};

    use crate::sys;

    /// A command to start, and where to send it back with the result.
    struct Request {
        command: Command,
        reply: Sender<(Command, io::Result<Child>)>,
    }

    /// The way to the spawner thread, once started. It is never dropped, so the thread
    /// never ends.
    static SPAWNER: Mutex<Option<Sender<Request>>> = Mutex::new(None);

    pub(super) fn spawn(command: &mut Command) -> io::Result<Child> {
        sys::kill_with_parent(command)?;
        let to_spawner = spawner()?;
        let (reply, answer) = mpsc::channel();
        // A `&mut Command` cannot cross threads: the command itself goes, and comes back.
        let command_moved = std::mem::replace(command, Command::new("/"));
        if let Err(mpsc::SendError(request)) = to_spawner.send(Request {
            command: command_moved,
            reply,
        }) {
            *command = request.command;
            return Err(gone());
        }
        let (back, spawned) = answer.recv().map_err(|_| gone())?;
        *command = back;
        spawned
    }

    /// A sender to the spawner thread, started on first use.
    fn spawner() -> io::Result<Sender<Request>> {
        let mut slot = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = &*slot {
            return Ok(sender.clone());
        }
        let (sender, requests) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("isofix-spawner".to_owned())
            .spawn(move || {
                for Request { mut command, reply } in requests {
                    let spawned = command.spawn();
                    let _ = reply.send((command, spawned));
                }
            })
            .map_err(|e| io::Error::new(e.kind(), format!("start isofix's spawner thread: {e}")))?;
        Ok(slot.insert(sender).clone())
    }

    fn gone() -> io::Error {
        io::Error::new(io::ErrorKind::Other, "isofix's spawner thread has ended")
    }
}
