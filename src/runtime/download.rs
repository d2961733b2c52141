//! Downloads into the cache as `<file>.partial`, hashing while downloading, resuming with
//! an HTTP Range request when the connection drops and the server allows it.
//!
//! Bytes can also be streamed to a [`ChunkSink`] so extraction runs while the download
//! is still in flight (as uv does); the sink is told to give up if the stream has to
//! restart from zero, and the caller then extracts from the finished file.

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::{Progress, Reporter};

/// How long a download keeps retrying without receiving a byte (any progress starts the
/// budget again); `RETRY_BUDGET_ENV` (seconds) replaces it.
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);
/// Seconds a download keeps retrying without progress.
pub const RETRY_BUDGET_ENV: &str = "BEEP_HOST_DOWNLOAD_RETRY_SECS";
/// The first wait between attempts; it doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);
const CHUNK: usize = 256 * 1024;

/// The retry budget: `RETRY_BUDGET_ENV` when it holds a number of seconds, else 30 s.
pub fn retry_budget_from_env() -> Duration {
    std::env::var(RETRY_BUDGET_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(RETRY_BUDGET)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to download `{url}`")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Failed to download `{url}`: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error(
        "Failed to download `{url}`: gave up after {attempts} attempts in {seconds:.1} s without progress"
    )]
    GaveUp {
        url: String,
        attempts: u32,
        seconds: f64,
        #[source]
        source: Box<Error>,
    },
    #[error("Hash mismatch for `{url}`:\n  expected: {expected}\n  computed: {computed}")]
    HashMismatch {
        url: String,
        expected: String,
        computed: String,
    },
    #[error("Failed to write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Unsupported URL `{url}`: expected http://, https:// or file://")]
    UnsupportedUrl { url: String },
    #[error("Download cancelled")]
    Cancelled,
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::Cancelled => C::Cancelled,
            Self::UnsupportedUrl { .. } => C::Invalid,
            Self::Write { .. } => C::Internal,
            _ => C::Failed,
        }
    }
}

/// A message to a streaming consumer of the downloaded bytes.
#[derive(Debug)]
pub enum Chunk {
    Data(Bytes),
    /// The stream restarted from zero: what was sent is void.
    Abort,
}

/// Where streamed bytes go (the extractor thread's end is a `Receiver<Chunk>`).
pub type ChunkSink = tokio::sync::mpsc::Sender<Chunk>;

/// The path of a `file://` URL, if `url` is one.
pub fn file_url_path(url: &str) -> Option<PathBuf> {
    url.strip_prefix("file://")
        .map(|rest| PathBuf::from(percent_decode(rest)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One download: from `url` into `partial`, expecting `sha256`.
pub struct Download<'a> {
    pub url: &'a str,
    pub sha256: &'a str,
    pub partial: &'a Path,
    pub reporter: &'a dyn Reporter,
    pub cancel: &'a CancellationToken,
    /// How long to keep retrying without progress (see [`RETRY_BUDGET`]).
    pub retry_budget: Duration,
}

/// What happened to the streamed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Every byte went to the sink exactly once, in order.
    pub streamed: bool,
}

struct State {
    hasher: Sha256,
    written: u64,
    total: Option<u64>,
    sink: Option<ChunkSink>,
    streamed: bool,
}

impl State {
    async fn push(
        &mut self,
        data: Bytes,
        file: &mut tokio::fs::File,
        path: &Path,
    ) -> Result<(), Error> {
        self.hasher.update(&data);
        file.write_all(&data).await.map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })?;
        self.written += data.len() as u64;
        if let Some(sink) = &self.sink
            && sink.send(Chunk::Data(data)).await.is_err()
        {
            // The consumer stopped (it failed); finish the download for the hash.
            self.sink = None;
            self.streamed = false;
        }
        Ok(())
    }

    async fn restart(&mut self, file: &mut tokio::fs::File, path: &Path) -> Result<(), Error> {
        self.hasher = Sha256::new();
        self.written = 0;
        if let Some(sink) = self.sink.take() {
            let _ = sink.send(Chunk::Abort).await;
        }
        self.streamed = false;
        file.set_len(0).await.map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })?;
        use tokio::io::AsyncSeekExt;
        file.seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(|source| Error::Write {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(())
    }
}

impl Download<'_> {
    /// Fetch, verify, and leave the complete file at `partial`.
    pub async fn run(&self, sink: Option<ChunkSink>) -> Result<Outcome, Error> {
        if let Some(parent) = self.partial.parent() {
            fs_err::tokio::create_dir_all(parent)
                .await
                .map_err(|e| Error::Write {
                    path: parent.to_path_buf(),
                    source: e,
                })?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(self.partial)
            .await
            .map_err(|source| Error::Write {
                path: self.partial.to_path_buf(),
                source,
            })?;
        let mut state = State {
            hasher: Sha256::new(),
            written: 0,
            total: None,
            sink,
            streamed: true,
        };
        self.replay_partial(&mut state).await?;

        if let Some(path) = file_url_path(self.url) {
            self.copy_file(&path, &mut state, &mut file).await?;
        } else if self.url.starts_with("http://") || self.url.starts_with("https://") {
            self.fetch_http(&mut state, &mut file).await?;
        } else {
            return Err(Error::UnsupportedUrl {
                url: self.url.to_string(),
            });
        }
        file.flush().await.map_err(|source| Error::Write {
            path: self.partial.to_path_buf(),
            source,
        })?;
        drop(file);

        self.reporter.report(Progress::Verify);
        let computed = hex::encode(state.hasher.finalize());
        if !computed.eq_ignore_ascii_case(self.sha256) {
            let _ = fs_err::tokio::remove_file(self.partial).await;
            return Err(Error::HashMismatch {
                url: self.url.to_string(),
                expected: self.sha256.to_string(),
                computed,
            });
        }
        Ok(Outcome {
            streamed: state.streamed && state.sink.is_some(),
        })
    }

    /// Hash (and stream) what an earlier attempt left in the `.partial` file.
    async fn replay_partial(&self, state: &mut State) -> Result<(), Error> {
        let mut existing = match tokio::fs::File::open(self.partial).await {
            Ok(f) => f,
            Err(_) => return Ok(()),
        };
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = existing
                .read(&mut buf)
                .await
                .map_err(|source| Error::Read {
                    path: self.partial.to_path_buf(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            let data = Bytes::copy_from_slice(&buf[..n]);
            state.hasher.update(&data);
            state.written += n as u64;
            if let Some(sink) = &state.sink
                && sink.send(Chunk::Data(data)).await.is_err()
            {
                state.sink = None;
                state.streamed = false;
            }
        }
        if state.written > 0 {
            tracing::debug!(bytes = state.written, "resuming from partial download");
        }
        Ok(())
    }

    async fn copy_file(
        &self,
        path: &Path,
        state: &mut State,
        file: &mut tokio::fs::File,
    ) -> Result<(), Error> {
        let read_err = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut src = tokio::fs::File::open(path).await.map_err(read_err)?;
        let len = src.metadata().await.map_err(read_err)?.len();
        state.total = Some(len);
        if state.written > len {
            state.restart(file, self.partial).await?;
        }
        use tokio::io::AsyncSeekExt;
        src.seek(std::io::SeekFrom::Start(state.written))
            .await
            .map_err(read_err)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            if self.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let n = src.read(&mut buf).await.map_err(read_err)?;
            if n == 0 {
                break;
            }
            state
                .push(Bytes::copy_from_slice(&buf[..n]), file, self.partial)
                .await?;
            self.reporter.report(Progress::Download {
                bytes: state.written,
                total: state.total,
            });
        }
        Ok(())
    }

    /// Fetch over HTTP, retrying with exponential backoff (100 ms doubling to 5 s) for as
    /// long as the retry budget allows without progress; a byte received starts it again.
    async fn fetch_http(&self, state: &mut State, file: &mut tokio::fs::File) -> Result<(), Error> {
        let client = http_client();
        let mut attempts = 0u32;
        let mut delay = FIRST_DELAY;
        let mut since_progress = std::time::Instant::now();
        loop {
            let before = state.written;
            match self.attempt(&client, state, file).await {
                Ok(()) => return Ok(()),
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e @ Error::Write { .. }) => return Err(e),
                Err(e @ Error::Status { status, .. }) if !is_transient(status) => return Err(e),
                Err(e) => {
                    if state.written > before {
                        attempts = 0;
                        delay = FIRST_DELAY;
                        since_progress = std::time::Instant::now();
                    }
                    attempts += 1;
                    let waited = since_progress.elapsed();
                    if waited + delay > self.retry_budget {
                        return Err(Error::GaveUp {
                            url: self.url.to_string(),
                            attempts,
                            seconds: waited.as_secs_f64(),
                            source: Box::new(e),
                        });
                    }
                    tracing::info!(url = self.url, bytes = state.written, error = %e, ?delay, "download interrupted; retrying");
                    self.reporter.report(Progress::Output {
                        line: format!(
                            "{}; retrying in {:.1} s",
                            crate::error::chain(&e),
                            delay.as_secs_f64()
                        ),
                    });
                    tokio::select! {
                        () = self.cancel.cancelled() => return Err(Error::Cancelled),
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(MAX_DELAY);
                }
            }
        }
    }

    async fn attempt(
        &self,
        client: &reqwest::Client,
        state: &mut State,
        file: &mut tokio::fs::File,
    ) -> Result<(), Error> {
        let request_err = |source| Error::Request {
            url: self.url.to_string(),
            source,
        };
        let mut request = client.get(self.url);
        if state.written > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={}-", state.written));
        }
        let response = tokio::select! {
            () = self.cancel.cancelled() => return Err(Error::Cancelled),
            r = request.send() => r.map_err(request_err)?,
        };
        let status = response.status();
        if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && state.written > 0 {
            // Either the partial file is already complete (the hash will tell) or it is
            // longer than the resource: start over.
            let total = content_range_total(&response);
            if total == Some(state.written) {
                state.total = total;
                return Ok(());
            }
            state.restart(file, self.partial).await?;
            return Err(Error::Read {
                path: self.partial.to_path_buf(),
                source: std::io::Error::other("the server refused the resume range; restarting"),
            });
        }
        if !status.is_success() {
            return Err(Error::Status {
                url: self.url.to_string(),
                status: status.as_u16(),
            });
        }
        if state.written > 0 && status != reqwest::StatusCode::PARTIAL_CONTENT {
            // The server ignored the Range header: start from zero.
            tracing::debug!("server does not resume; restarting download");
            state.restart(file, self.partial).await?;
        }
        state.total = if status == reqwest::StatusCode::PARTIAL_CONTENT {
            content_range_total(&response)
        } else {
            response.content_length()
        };
        let mut stream = response.bytes_stream();
        loop {
            let next = tokio::select! {
                () = self.cancel.cancelled() => return Err(Error::Cancelled),
                n = stream.next() => n,
            };
            match next {
                None => break,
                Some(Ok(data)) => {
                    state.push(data, file, self.partial).await?;
                    self.reporter.report(Progress::Download {
                        bytes: state.written,
                        total: state.total,
                    });
                }
                Some(Err(source)) => return Err(request_err(source)),
            }
        }
        if let Some(total) = state.total
            && state.written < total
        {
            return Err(Error::Read {
                path: self.partial.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {} of {total} bytes", state.written),
                ),
            });
        }
        Ok(())
    }
}

/// Statuses worth retrying: the server is busy or a proxy lost it.
fn is_transient(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

fn content_range_total(response: &reqwest::Response) -> Option<u64> {
    let value = response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    value.rsplit('/').next()?.trim().parse().ok()
}

/// One client per process: connection pools and TLS setup are reused.
fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(concat!("beep-host/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default()
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_decoded() {
        assert_eq!(
            file_url_path("file:///a/b%2Bc.tar.gz"),
            Some(PathBuf::from("/a/b+c.tar.gz"))
        );
        assert_eq!(file_url_path("http://x"), None);
    }
}
