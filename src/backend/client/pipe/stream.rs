//! The byte stream under the frames: the one platform-specific part of this transport. Both
//! kinds have the same non-blocking interface (`try_read_buf`, `try_write`, `readable`,
//! `writable`), so the rest of the client is shared.

#[cfg(unix)]
pub use unix::{Stream, connect};
#[cfg(windows)]
pub use windows::{Stream, connect};

#[cfg(unix)]
mod unix {
    pub type Stream = tokio::net::UnixStream;

    pub async fn connect(address: &str) -> std::io::Result<Stream> {
        Stream::connect(address).await
    }
}

/// On Windows the address is a pipe name (`\\.\pipe\beep-backend-<random>`). The server
/// keeps one instance listening and makes the next as soon as a client takes it, so
/// `ERROR_PIPE_BUSY` (all instances taken at this moment) is retried for a while.
#[cfg(windows)]
mod windows {
    use std::time::{Duration, Instant};

    use tokio::net::windows::named_pipe::ClientOptions;

    pub type Stream = tokio::net::windows::named_pipe::NamedPipeClient;

    const ERROR_PIPE_BUSY: i32 = 231;
    /// How long to retry a busy pipe before giving up.
    const BUSY_FOR: Duration = Duration::from_secs(5);

    pub async fn connect(address: &str) -> std::io::Result<Stream> {
        let until = Instant::now() + BUSY_FOR;
        loop {
            match ClientOptions::new().open(address) {
                Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) && Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                result => return result,
            }
        }
    }
}
