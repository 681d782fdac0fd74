//! Waiting for a child and its group without blocking a tokio worker (feature `tokio`).

use std::io;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use tokio::io::Interest;

use crate::net::listening::Pauses;
use crate::sys;

/// Waits until the child `pid` has ended, without reaping it. On Linux the runtime's event
/// loop waits on a pidfd, which becomes readable when the child ends; without pidfds
/// (before Linux 5.3, other systems) `waitid(WNOHANG)` is asked again after pauses growing
/// from 1 ms to 50 ms. Either way no thread is used, and a dropped future leaves nothing
/// behind (the pidfd is closed with it).
pub(crate) async fn exited(pid: u32) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // `with_interest` is deprecated in recent tokio for types whose descriptor may
        // change under it; an `OwnedFd`'s cannot, and the replacement is missing from the
        // tokio releases this crate supports.
        #[allow(deprecated)]
        let registered = sys::pidfd_open(pid)
            .and_then(|pidfd| tokio::io::unix::AsyncFd::with_interest(pidfd, Interest::READABLE));
        if let Ok(pidfd) = registered {
            loop {
                let mut ready = pidfd.readable().await?;
                if sys::peek_exit(pid, false)?.is_some() {
                    return Ok(());
                }
                ready.clear_ready();
            }
        }
    }
    let mut pauses = Pauses::new();
    while sys::peek_exit(pid, false)?.is_none() {
        tokio::time::sleep(pauses.next_pause()).await;
    }
    Ok(())
}

/// The async form of the guard's wait for a killed group: until no process of `pgid` is
/// `alive`, for at most `limit`, with tokio's timer between the looks.
pub(crate) async fn group_dead(pgid: u32, alive: fn(u32) -> bool, limit: Duration) {
    let start = Instant::now();
    let mut pauses = Pauses::new();
    while alive(pgid) && start.elapsed() < limit {
        tokio::time::sleep(pauses.next_pause()).await;
    }
}
