//! Captured output of a backend: a rotated file and an in-memory tail that subscribers follow.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::sync::broadcast;

use super::status::{LogLine, LogStream};

/// Rotate the file when it grows past this size.
pub const ROTATE_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated files kept (`<id>.log.1` .. `<id>.log.3`).
pub const KEEP_ROTATED: u32 = 3;
/// Lines kept in memory.
pub const TAIL_LINES: usize = 1000;

/// The log of one backend, shared by its stdout and stderr readers.
#[derive(Debug)]
pub struct BackendLog {
    path: PathBuf,
    inner: Mutex<Inner>,
    lines: broadcast::Sender<LogLine>,
}

#[derive(Debug)]
struct Inner {
    file: Option<std::fs::File>,
    size: u64,
    tail: VecDeque<LogLine>,
    rotate_bytes: u64,
}

impl BackendLog {
    /// Append to `path` (created with its parent directory).
    pub fn open(path: PathBuf) -> Self {
        Self::with_rotation(path, ROTATE_BYTES)
    }

    pub fn with_rotation(path: PathBuf, rotate_bytes: u64) -> Self {
        let (file, size) = match open_append(&path) {
            Ok(file) => {
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                (Some(file), size)
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "cannot open the backend log file");
                (None, 0)
            }
        };
        let (lines, _) = broadcast::channel(1024);
        Self {
            path,
            inner: Mutex::new(Inner {
                file,
                size,
                tail: VecDeque::with_capacity(64),
                rotate_bytes,
            }),
            lines,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record one line: the file, the tail, the subscribers.
    pub fn push(&self, stream: LogStream, text: String) {
        let line = LogLine { stream, text };
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.write(&self.path, &line.text);
            if inner.tail.len() == TAIL_LINES {
                inner.tail.pop_front();
            }
            inner.tail.push_back(line.clone());
        }
        let _ = self.lines.send(line);
    }

    /// A line of the host's own (started, ended, restarting), marked `[beep-host]`.
    pub fn note(&self, text: &str) {
        let at = time_of_day(super::process::unix_now());
        self.push(LogStream::Stderr, format!("[beep-host {at}] {text}"));
    }

    /// The last `n` lines in memory.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let skip = inner.tail.len().saturating_sub(n);
        inner.tail.iter().skip(skip).cloned().collect()
    }

    /// The tail so far and a receiver of the lines that follow it.
    pub fn follow(&self) -> (Vec<LogLine>, broadcast::Receiver<LogLine>) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = self.lines.subscribe();
        (inner.tail.iter().cloned().collect(), receiver)
    }
}

impl Inner {
    fn write(&mut self, path: &Path, text: &str) {
        let bytes = text.len() as u64 + 1;
        if self.size > 0 && self.size + bytes > self.rotate_bytes {
            self.file = None;
            rotate(path);
            self.file = open_append(path).ok();
            self.size = 0;
        }
        if let Some(file) = self.file.as_mut() {
            let mut buf = Vec::with_capacity(text.len() + 1);
            buf.extend_from_slice(text.as_bytes());
            buf.push(b'\n');
            if file.write_all(&buf).is_ok() {
                self.size += bytes;
            }
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let mut options = fs_err::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    fs_err::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(fs_err::File::into_file)
}

/// `<log>.2` -> `<log>.3`, `<log>.1` -> `<log>.2`, `<log>` -> `<log>.1`.
fn rotate(path: &Path) {
    let numbered = |n: u32| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    for n in (1..KEEP_ROTATED).rev() {
        let _ = fs_err::rename(numbered(n), numbered(n + 1));
    }
    let _ = fs_err::rename(path, numbered(1));
}

/// The last `n` lines of a log file (for processes that do not own the backend).
pub fn read_tail(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    let text = fs_err::read(path)?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..].iter().map(|s| s.to_string()).collect())
}

/// `HH:MM:SS` UTC of a Unix time.
fn time_of_day(secs: u64) -> String {
    let s = secs % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_keeps_three() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.log");
        let log = BackendLog::with_rotation(path.clone(), 100);
        for i in 0..100 {
            log.push(LogStream::Stderr, format!("line {i:04} ........"));
        }
        assert!(path.exists());
        for n in 1..=3 {
            assert!(dir.path().join(format!("b.log.{n}")).exists());
        }
        assert!(!dir.path().join("b.log.4").exists());
        assert!(fs_err::metadata(&path).unwrap().len() <= 100);
        let tail = log.tail(2);
        assert_eq!(tail[1].text, "line 0099 ........");
        assert_eq!(read_tail(&path, 1).unwrap(), vec!["line 0099 ........"]);
    }

    #[test]
    fn tail_is_bounded_and_followable() {
        let dir = tempfile::tempdir().unwrap();
        let log = BackendLog::open(dir.path().join("x.log"));
        for i in 0..(TAIL_LINES + 10) {
            log.push(LogStream::Stdout, i.to_string());
        }
        let (tail, mut rx) = log.follow();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail[0].text, "10");
        log.push(LogStream::Stdout, "next".into());
        assert_eq!(rx.try_recv().unwrap().text, "next");
    }
}
