//! A real HTTP/1.1 file server on 127.0.0.1 for tests: serves a directory, honours
//! `Range: bytes=N-`, and can misbehave on purpose (drop a connection mid-file, stall).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// On the first full (non-Range) GET, close the connection after this many body bytes.
    pub drop_first_after: Option<u64>,
    /// Ignore Range headers (always answer 200 with the whole file).
    pub no_range: bool,
    /// Send this many body bytes, then hang until the client goes away.
    pub stall_after: Option<u64>,
    /// For this long after the server starts, close every connection without answering.
    pub refuse_for: Option<Duration>,
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
}

pub struct FileServer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl FileServer {
    pub fn start(root: PathBuf, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let refuse_until = behaviour.refuse_for.map(|d| std::time::Instant::now() + d);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (root, behaviour, seen, dropped) = (
                    root.clone(),
                    behaviour.clone(),
                    seen2.clone(),
                    dropped.clone(),
                );
                if refuse_until.is_some_and(|t| std::time::Instant::now() < t) {
                    seen.lock().unwrap().push(Seen {
                        path: "(refused)".into(),
                        range: None,
                    });
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                std::thread::spawn(move || {
                    let _ = serve(stream, &root, &behaviour, &seen, &dropped);
                });
            }
        });
        Self { port, seen, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn decode(path: &str) -> String {
    path.replace("%2B", "+").replace("%2b", "+")
}

fn serve(
    stream: TcpStream,
    root: &std::path::Path,
    behaviour: &Behaviour,
    seen: &Mutex<Vec<Seen>>,
    dropped: &AtomicU64,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut range = None;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("range")
            {
                range = Some(value.trim().to_string());
            }
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        seen.lock().unwrap().push(Seen {
            path: path.clone(),
            range: range.clone(),
        });
        let file = root.join(decode(path.trim_start_matches('/')));
        let Ok(data) = std::fs::read(&file) else {
            writer.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")?;
            continue;
        };
        let total = data.len() as u64;
        let start = match (&range, behaviour.no_range) {
            (Some(r), false) => r
                .strip_prefix("bytes=")
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<u64>().ok()),
            _ => None,
        };
        if let Some(start) = start {
            if start >= total {
                let head = format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\ncontent-range: bytes */{total}\r\ncontent-length: 0\r\n\r\n"
                );
                writer.write_all(head.as_bytes())?;
                continue;
            }
            let body = &data[start as usize..];
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {start}-{}/{total}\r\naccept-ranges: bytes\r\n\r\n",
                body.len(),
                total - 1
            );
            writer.write_all(head.as_bytes())?;
            writer.write_all(body)?;
            continue;
        }
        let head =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\naccept-ranges: bytes\r\n\r\n");
        writer.write_all(head.as_bytes())?;
        if let Some(n) = behaviour.stall_after {
            writer.write_all(&data[..n.min(total) as usize])?;
            writer.flush()?;
            std::thread::sleep(Duration::from_secs(60));
            return Ok(());
        }
        if let Some(n) = behaviour.drop_first_after
            && dropped.fetch_add(1, Ordering::SeqCst) == 0
        {
            writer.write_all(&data[..n.min(total) as usize])?;
            writer.flush()?;
            writer.shutdown(std::net::Shutdown::Both)?;
            return Ok(());
        }
        writer.write_all(&data)?;
    }
}
