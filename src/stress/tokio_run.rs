//! [`Stress::run_async`]: the same run with the body as tokio tasks (feature `tokio`).

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{panic_message, Iteration, Outcome, Run, Stress, StressReport, WorkerExit};

impl Stress {
    /// Runs `body` as [`workers`](Stress::workers) tokio tasks, each awaiting one iteration
    /// at a time, and reports (feature `tokio`). Call it inside a tokio runtime; on a
    /// multi-thread runtime the tasks run in parallel. Panics in `body` are caught and
    /// counted. Dropping the returned future stops the tasks after their current iteration.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use isofix::{stress::Stress, EphemeralTcp};
    ///
    /// let report = Stress::new()
    ///     .iterations(100)
    ///     .workers(8)
    ///     .run_async(|_it| async {
    ///         let srv = EphemeralTcp::bind_tokio().await?;
    ///         let _client = tokio::net::TcpStream::connect(srv.local_addr()?).await?;
    ///         srv.accept().await.map(drop)
    ///     })
    ///     .await;
    /// report.assert_clean();
    /// # });
    /// ```
    pub async fn run_async<O, F, Fut>(&self, body: F) -> StressReport
    where
        F: Fn(Iteration) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + Send + 'static,
        O: Outcome + 'static,
    {
        let run = Arc::new(Run::start(self));
        let _stop = StopOnDrop(Arc::clone(&run));
        let body = Arc::new(body);
        let workers = self
            .workers
            .min(self.iterations.max(1).min(usize::MAX as u64) as usize);
        run.live_workers.store(workers as u64, Ordering::Relaxed);
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let (run, body) = (Arc::clone(&run), Arc::clone(&body));
                tokio::spawn(async move {
                    let _exit = WorkerExit(&run);
                    while let Some(it) = run.next() {
                        let result = match panic::catch_unwind(AssertUnwindSafe(|| body(it))) {
                            Ok(future) => CatchUnwind(Box::pin(future)).await,
                            Err(payload) => Err(payload),
                        };
                        run.record(
                            it,
                            result.map_or_else(|p| Err(panic_message(&*p)), O::into_result),
                        );
                    }
                })
            })
            .collect();
        let progress = {
            let run = Arc::clone(&run);
            tokio::task::spawn_blocking(move || run.show_progress())
        };
        for task in tasks {
            // Panics are caught inside; a task fails only if the runtime shuts down, and
            // then the report counts what ran.
            let _ = task.await;
        }
        let _ = progress.await;
        run.finish()
    }
}

/// Stops a run whose future was dropped: the tasks end after their current iteration.
struct StopOnDrop(Arc<Run>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
    }
}

/// A future that turns a panic while polling `F` into an `Err` with the payload.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.get_mut().0.as_mut();
        match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}
