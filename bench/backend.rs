//! Backend benchmark: cold start, `eval 1+1` latency and throughput per transport, next to
//! a raw Rust <-> Python Unix-socket echo measured in the same run, and the supervisor's own
//! CPU use while idle with 20 backends.
//!
//! Run: `cargo run --release --example bench_backend` (env `BENCH_CALLS`, `BENCH_SECS`,
//! `BENCH_PYTHON`: the interpreter of the echo and the backends, default `python3`;
//! `BENCH_PIPE_ONLY=1`: the echo and the pipe transport only, for quick comparisons;
//! `BENCH_RUNTIME=current`: everything on a single-threaded tokio runtime; by default the
//! clients run on a 2-worker runtime, from `block_on` like `#[tokio::main]`, and the pipe
//! is measured once more from a single-threaded runtime at the end).
#![allow(clippy::print_stdout)]

// The raw baselines and the pipe transport use Unix domain sockets.
#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(not(unix))]
fn main() {
    eprintln!("bench_backend needs Unix domain sockets");
}

#[cfg(unix)]
mod unix {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use beep_host::Paths;
    use beep_host::backend::{BackendClient, BackendSpec, Supervisor, Transport};
    use beep_host::venv::EnvName;

    const ECHO_SERVER: &str = r#"
import socket, struct, sys, threading
srv = socket.socket(socket.AF_UNIX)
srv.bind(sys.argv[1])
srv.listen(16)
print("ready", flush=True)
def serve(c):
    f = c.makefile("rb")
    while True:
        h = f.read(4)
        if len(h) < 4:
            return
        (n,) = struct.unpack(">I", h)
        c.sendall(h + f.read(n))
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

    const FRAME_BODY: &[u8] = br#"{"id": 1, "op": "eval", "expr": "1+1"}"#;

    fn env_usize(name: &str, default: usize) -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// The interpreter of the echo and the backends: `BENCH_PYTHON`, else `python3` on PATH.
    fn python() -> PathBuf {
        let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(python)
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    }

    /// A venv of `python` with grpcio, cached under the target dir.
    fn grpc_env(python: &Path) -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/test-envs");
        std::fs::create_dir_all(&root).unwrap();
        let name = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            python.hash(&mut hasher);
            format!("grpc-{:016x}", hasher.finish())
        };
        let env = root.join(&name);
        let _lock = beep_host::lock::LockFile::acquire_blocking(&root.join(format!("{name}.lock")))
            .unwrap();
        if !env.join("ok").exists() {
            let partial = root.join(format!("{name}.partial"));
            let _ = std::fs::remove_dir_all(&partial);
            assert!(
                Command::new(python)
                    .args(["-m", "venv"])
                    .arg(&partial)
                    .status()
                    .unwrap()
                    .success()
            );
            assert!(
                Command::new(partial.join("bin/python"))
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "-q",
                        "grpcio==1.76.0",
                        "protobuf==6.33.1"
                    ])
                    .status()
                    .unwrap()
                    .success()
            );
            let _ = std::fs::remove_dir_all(&env);
            std::fs::rename(&partial, &env).unwrap();
            std::fs::write(env.join("ok"), b"").unwrap();
        }
        env
    }

    #[derive(Debug, Default, Clone)]
    struct Row {
        name: String,
        cold_ms: Option<f64>,
        p50_us: f64,
        p99_us: f64,
        one_client: f64,
        four_clients: f64,
        /// 4 concurrent callers on one shared client.
        shared: Option<f64>,
    }

    fn percentile(sorted: &[f64], p: f64) -> f64 {
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i]
    }

    fn latencies(mut samples: Vec<f64>) -> (f64, f64, f64) {
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        (
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            1e6 / mean,
        )
    }

    /// The raw floor: blocking Rust client, Python thread-per-connection echo server.
    fn raw_echo(python: &Path, dir: &Path, calls: usize, secs: f64) -> Row {
        let socket = dir.join("echo.sock");
        let mut server = Command::new(python)
            .args(["-c", ECHO_SERVER])
            .arg(&socket)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut frame = (FRAME_BODY.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(FRAME_BODY);
        let call = |stream: &mut UnixStream, buf: &mut Vec<u8>| {
            stream.write_all(&frame).unwrap();
            let mut head = [0u8; 4];
            stream.read_exact(&mut head).unwrap();
            buf.resize(u32::from_be_bytes(head) as usize, 0);
            stream.read_exact(buf).unwrap();
        };
        let mut stream = UnixStream::connect(&socket).unwrap();
        let mut buf = Vec::new();
        for _ in 0..200 {
            call(&mut stream, &mut buf);
        }
        let samples = (0..calls)
            .map(|_| {
                let t = Instant::now();
                call(&mut stream, &mut buf);
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let (p50, p99, one) = latencies(samples);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let total: usize = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    let socket = &socket;
                    let call = &call;
                    scope.spawn(move || {
                        let mut stream = UnixStream::connect(socket).unwrap();
                        let mut buf = Vec::new();
                        let mut n = 0;
                        while Instant::now() < deadline {
                            call(&mut stream, &mut buf);
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        let _ = server.kill();
        let _ = server.wait();
        Row {
            name: "raw UDS echo".into(),
            cold_ms: None,
            p50_us: p50,
            p99_us: p99,
            one_client: one,
            four_clients: total as f64 / secs,
            shared: None,
        }
    }

    /// A blocking Rust client speaking the pipe protocol straight to a real backend: the
    /// Python server's own floor, without the async client.
    fn raw_backend(address: &str, token: &str, calls: usize, secs: f64) -> Row {
        let frame_of = |body: &[u8]| {
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(body);
            frame
        };
        let auth = frame_of(format!(r#"{{"id": 0, "op": "auth", "token": "{token}"}}"#).as_bytes());
        let frame = frame_of(FRAME_BODY);
        let call = |stream: &mut UnixStream, buf: &mut Vec<u8>, frame: &[u8]| {
            stream.write_all(frame).unwrap();
            let mut head = [0u8; 4];
            stream.read_exact(&mut head).unwrap();
            buf.resize(u32::from_be_bytes(head) as usize, 0);
            stream.read_exact(buf).unwrap();
        };
        let connect = || {
            let mut stream = UnixStream::connect(address).unwrap();
            let mut buf = Vec::new();
            call(&mut stream, &mut buf, &auth);
            assert!(String::from_utf8_lossy(&buf).contains("true"));
            stream
        };
        let mut stream = connect();
        let mut buf = Vec::new();
        for _ in 0..200 {
            call(&mut stream, &mut buf, &frame);
        }
        let samples = (0..calls)
            .map(|_| {
                let t = Instant::now();
                call(&mut stream, &mut buf, &frame);
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let (p50, p99, one) = latencies(samples);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let total: usize = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    let (call, connect, frame) = (&call, &connect, &frame);
                    scope.spawn(move || {
                        let mut stream = connect();
                        let mut buf = Vec::new();
                        let mut n = 0;
                        while Instant::now() < deadline {
                            call(&mut stream, &mut buf, frame);
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        Row {
            name: "raw->backend".into(),
            cold_ms: None,
            p50_us: p50,
            p99_us: p99,
            one_client: one,
            four_clients: total as f64 / secs,
            shared: None,
        }
    }

    async fn bench_transport(
        supervisor: &Supervisor,
        env: &EnvName,
        transport: Transport,
        calls: usize,
        secs: f64,
        with_floor: bool,
    ) -> (Row, Option<Row>) {
        // Cold start: spawn to first answered call, median of 5.
        let mut colds = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let id = supervisor
                .start(BackendSpec::new(env.clone(), transport))
                .await
                .unwrap();
            let client = supervisor.client(&id).await.unwrap();
            client.eval("1+1").await.unwrap();
            colds.push(t.elapsed().as_secs_f64() * 1e3);
            supervisor.stop(&id).await.unwrap();
        }
        colds.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let id = supervisor
            .start(BackendSpec::new(env.clone(), transport))
            .await
            .unwrap();
        let client = supervisor.client(&id).await.unwrap();
        for _ in 0..200 {
            client.eval("1+1").await.unwrap();
        }
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            client.eval("1+1").await.unwrap();
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let (p50, p99, one) = latencies(samples);
        let mut clients: Vec<Box<dyn BackendClient>> = Vec::new();
        for _ in 0..4 {
            clients.push(supervisor.client(&id).await.unwrap());
        }
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let runs = clients.iter().map(|client| async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                client.eval("1+1").await.unwrap();
                n += 1;
            }
            n
        });
        let total: usize = futures_util::future::join_all(runs).await.into_iter().sum();
        // 4 concurrent callers sharing the first client (one connection, pipelined).
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let shared = &client;
        let runs = (0..4).map(|_| async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                shared.eval("1+1").await.unwrap();
                n += 1;
            }
            n
        });
        let shared_total: usize = futures_util::future::join_all(runs).await.into_iter().sum();
        drop(clients);
        drop(client);
        // The floor alone on the backend, like the sequential pipe calls above (with other
        // connections open the server polls them all instead of blocking on one).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let raw = if with_floor && transport == Transport::Pipe {
            let status = supervisor.status(&id).unwrap();
            let record = beep_host::backend::BackendRecord::read(&status.record).unwrap();
            let (address, token) = (record.address.clone(), record.token.clone());
            Some(
                tokio::task::spawn_blocking(move || raw_backend(&address, &token, calls, secs))
                    .await
                    .unwrap(),
            )
        } else {
            None
        };
        supervisor.stop(&id).await.unwrap();
        let row = Row {
            name: transport.as_str().into(),
            cold_ms: Some(colds[2]),
            p50_us: p50,
            p99_us: p99,
            one_client: one,
            four_clients: total as f64 / secs,
            shared: Some(shared_total as f64 / secs),
        };
        (row, raw)
    }

    fn cpu_seconds() -> f64 {
        // SAFETY: getrusage writes into the struct we pass.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
            t(usage.ru_utime) + t(usage.ru_stime)
        }
    }

    pub fn main() {
        let calls = env_usize("BENCH_CALLS", 5000);
        let secs = env_usize("BENCH_SECS", 3) as f64;
        let python = python();
        let home = tempfile::Builder::new()
            .prefix("bb")
            .tempdir_in("/tmp")
            .unwrap();
        let paths = Paths::under(home.path().to_path_buf());
        let env = EnvName::parse("admin").unwrap();
        std::fs::create_dir_all(paths.envs()).unwrap();
        std::os::unix::fs::symlink(grpc_env(&python), beep_host::venv::env_dir(&paths, &env))
            .unwrap();

        let raw = raw_echo(&python, home.path(), calls, secs);
        // BENCH_RUNTIME=current measures on a single-threaded tokio runtime.
        let runtime = if std::env::var("BENCH_RUNTIME").as_deref() == Ok("current") {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        };
        let (rows, idle) = runtime.block_on(async {
            let supervisor = Supervisor::new(paths.clone());
            let mut rows = vec![raw.clone()];
            let pipe_only = std::env::var("BENCH_PIPE_ONLY").as_deref() == Ok("1");
            let transports: &[Transport] = if pipe_only {
                &[Transport::Pipe]
            } else {
                &[Transport::Pipe, Transport::Http, Transport::Rpc]
            };
            for &transport in transports {
                let (row, raw) =
                    bench_transport(&supervisor, &env, transport, calls, secs, true).await;
                rows.extend(raw);
                rows.push(row);
            }
            if pipe_only {
                return (rows, f64::NAN);
            }
            // Idle supervisor with 20 backends.
            let mut ids = Vec::new();
            for i in 0..20 {
                let transport = if i % 2 == 0 {
                    Transport::Pipe
                } else {
                    Transport::Http
                };
                ids.push(
                    supervisor
                        .start(BackendSpec::new(env.clone(), transport))
                        .await
                        .unwrap(),
                );
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (t0, c0) = (Instant::now(), cpu_seconds());
            tokio::time::sleep(Duration::from_secs(10)).await;
            let idle = (cpu_seconds() - c0) / t0.elapsed().as_secs_f64() * 100.0;
            let ready = supervisor.list().iter().filter(|s| s.rss_bytes > 0).count();
            assert_eq!(ready, 20, "stats for all 20 backends");
            supervisor.stop_all().await;
            (rows, idle)
        });
        drop(runtime);
        // The pipe again from a single-threaded runtime, in the same run. On the multi-thread
        // runtime, an idle worker parked in epoll wakes for every answer that reaches the
        // socket (tokio registers it edge-triggered), even while the caller spins on it; on
        // two cores that wake-up competes with the backend.
        let mut rows = rows;
        if std::env::var("BENCH_RUNTIME").as_deref() != Ok("current") {
            let current = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (mut row, _) = current.block_on(async {
                let supervisor = Supervisor::new(paths.clone());
                bench_transport(&supervisor, &env, Transport::Pipe, calls, secs, false).await
            });
            row.name = "pipe 1-thread".into();
            rows.push(row);
        }

        println!("\neval 1+1, {calls} sequential calls; 4 clients for {secs} s (2 cores)\n");
        println!(
            "| {:<13} | {:>13} | {:>8} | {:>8} | {:>12} | {:>12} | {:>14} | {:>10} | {:>13} |",
            "transport",
            "cold start ms",
            "p50 us",
            "p99 us",
            "calls/s (1)",
            "calls/s (4)",
            "4 on 1 conn/s",
            "p50 / raw",
            "calls/s / raw"
        );
        println!(
            "|{}|",
            [
                "---------------",
                "---------------",
                "----------",
                "----------",
                "--------------",
                "--------------",
                "----------------",
                "------------",
                "---------------"
            ]
            .join("|")
        );
        for row in &rows {
            println!(
                "| {:<13} | {:>13} | {:>8.1} | {:>8.1} | {:>12.0} | {:>12.0} | {:>14} | {:>9.2}x | {:>12.2}x |",
                row.name,
                row.cold_ms
                    .map(|c| format!("{c:.1}"))
                    .unwrap_or_else(|| "-".into()),
                row.p50_us,
                row.p99_us,
                row.one_client,
                row.four_clients,
                row.shared
                    .map(|c| format!("{c:.0}"))
                    .unwrap_or_else(|| "-".into()),
                row.p50_us / raw.p50_us,
                row.four_clients / raw.four_clients,
            );
        }
        println!("\nsupervisor idle with 20 backends: {idle:.2}% of one core (target < 2%)");
        let pipe = &rows[2];
        let floor = &rows[1];
        println!(
            "targets: pipe p50 <= 2x raw: {} ({:.2}x); pipe >= 25k calls/s with 4 clients: {} ({:.0})",
            if pipe.p50_us <= 2.0 * raw.p50_us {
                "met"
            } else {
                "MISSED"
            },
            pipe.p50_us / raw.p50_us,
            if pipe.four_clients >= 25_000.0 {
                "met"
            } else {
                "MISSED"
            },
            pipe.four_clients
        );
        println!(
            "Rust async pipe client over the Python server's own floor (raw->backend): p50 {:.2}x, 4 clients {:.2}x",
            pipe.p50_us / floor.p50_us,
            pipe.four_clients / floor.four_clients
        );
        if let Some(single) = rows.iter().find(|r| r.name == "pipe 1-thread") {
            println!(
                "pipe from a single-threaded runtime: p50 {:.2}x raw ({}), 4 clients {:.0}/s",
                single.p50_us / raw.p50_us,
                if single.p50_us <= 2.0 * raw.p50_us {
                    "met"
                } else {
                    "MISSED"
                },
                single.four_clients
            );
        }
    }
}
