use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use super::{EphemeralTcp, TestServer};

/// Options of a [`TestServer`], from [`TestServer::builder`].
///
/// ```
/// use std::time::Duration;
/// use isofix::{EphemeralTcp, TestServer};
///
/// # fn main() -> std::io::Result<()> {
/// let server = TestServer::builder()
///     .listener(EphemeralTcp::builder().backlog(1024).bind()?)
///     .deadline(Duration::from_secs(2))
///     .start(|_conn| Ok(()))?;
/// # drop(server);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until start()"]
pub struct TestServerBuilder {
    listener: Option<EphemeralTcp>,
    deadline: Duration,
}

impl TestServerBuilder {
    pub(crate) fn new() -> Self {
        TestServerBuilder {
            listener: None,
            deadline: Duration::from_secs(5),
        }
    }

    /// Serves on `listener` (e.g. IPv6, a bigger backlog) instead of a fresh
    /// [`EphemeralTcp::bind`].
    ///
    /// ```
    /// use isofix::{EphemeralTcp, TestServer};
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let listener = EphemeralTcp::bind()?;
    /// let addr = listener.addr();
    /// let server = TestServer::builder().listener(listener).start(|_conn| Ok(()))?;
    /// assert_eq!(server.addr(), addr);
    /// # Ok(())
    /// # }
    /// ```
    pub fn listener(mut self, listener: EphemeralTcp) -> Self {
        self.listener = Some(listener);
        self
    }

    /// How long [`shutdown`](TestServer::shutdown) and drop wait for handlers after their
    /// connections are shut down (default 5 s). A handler still running then is reported
    /// by peer and age and left to finish on its own.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::TestServer::builder()
    ///     .deadline(Duration::from_millis(500))
    ///     .start(|_conn| Ok(()))?;
    /// # drop(server);
    /// # Ok(())
    /// # }
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Starts the server, running `handler` on a thread of its own for each connection.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::TestServer::builder().start(|_conn| Ok(()))?;
    /// assert!(server.addr().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub fn start<F>(self, handler: F) -> io::Result<TestServer>
    where
        F: Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
    {
        let deadline = self.deadline;
        TestServer::serve(self.bind()?, deadline, Arc::new(handler))
    }

    /// The listener given, or a fresh one.
    fn bind(self) -> io::Result<EphemeralTcp> {
        match self.listener {
            Some(listener) => Ok(listener),
            None => EphemeralTcp::bind(),
        }
    }

    /// Starts an [`AsyncTestServer`](crate::AsyncTestServer) (feature `tokio`), running
    /// `handler` as a task of the current runtime for each connection. Fails with a clear
    /// error outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let mut server = isofix::TestServer::builder()
    ///         .deadline(Duration::from_secs(1))
    ///         .start_async(|_conn| async { Ok(()) })?;
    ///     server.shutdown().await
    /// }
    /// ```
    #[cfg(feature = "tokio")]
    pub fn start_async<F, Fut>(self, handler: F) -> io::Result<crate::AsyncTestServer>
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
    {
        let deadline = self.deadline;
        let handler = crate::AsyncTestServer::boxed(handler);
        crate::AsyncTestServer::serve(self.bind()?, deadline, handler)
    }
}
