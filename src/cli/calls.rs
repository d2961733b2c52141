//! `calls` and `attach`: the journaled calls of a backend, and following one of them; and
//! [`follow`], which prints a live call as it runs (also for `exec` and `eval`).
//!
//! Output goes where the backend wrote it (stdout to stdout, stderr to stderr) as it
//! arrives. Ctrl+C interrupts the call; a second Ctrl+C leaves it running and prints how to
//! follow it again.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;

use beep_host::backend::client::{CallEvent, CallStream, OutputStream, valid_call_id};
use beep_host::backend::{BackendId, Connection};

use super::call::{CtrlC, INTERRUPTED, connect, connection};
use super::output::{print_json, print_table};

#[derive(Debug, Args)]
pub struct CallsArgs {
    /// The backend (an id from `beep-host ps`).
    id: BackendId,
    /// Print the calls as JSON.
    #[arg(long)]
    json: bool,
    /// The calls of every session, not only of `--session`.
    #[arg(long)]
    all: bool,
    /// The calls of this session (default: "default").
    #[arg(long)]
    session: Option<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The backend (an id from `beep-host ps`).
    id: BackendId,
    /// The call (an id from `beep-host calls`).
    #[arg(value_parser = call_id)]
    call: String,
    /// Skip the output up to this sequence number (the last one already seen).
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    after: u64,
}

/// A call id as the backend takes it.
pub(super) fn call_id(text: &str) -> Result<String, String> {
    if valid_call_id(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{text}` is not a call id: 1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `:`, `-`"
        ))
    }
}

pub async fn calls(args: CallsArgs) -> anyhow::Result<ExitCode> {
    let client = connect(&connection(&args.id).await?).await?;
    let calls = client
        .calls(args.session.as_deref(), args.all)
        .await
        .with_context(|| format!("Failed to list the calls of backend `{}`", args.id))?;
    if args.json {
        print_json(&calls)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = calls
        .iter()
        .map(|c| {
            vec![
                c.call.clone(),
                c.op.clone(),
                c.session.clone(),
                c.state.as_str().to_string(),
                format!("{} ago", seconds((now - c.started).max(0.0))),
                c.duration.map(seconds).unwrap_or_else(|| "-".into()),
                format!("{} B", c.output_bytes),
            ]
        })
        .collect();
    print_table(
        &[
            "CALL", "OP", "SESSION", "STATE", "STARTED", "DURATION", "OUTPUT",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

fn seconds(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

pub async fn attach(args: AttachArgs) -> anyhow::Result<ExitCode> {
    let conn = connection(&args.id).await?;
    let client = connect(&conn).await?;
    let ctrl_c = CtrlC::listen().context("Failed to listen for Ctrl+C")?;
    let stream = client
        .attach(&args.call, args.after)
        .await
        .with_context(|| {
            format!(
                "Failed to attach to call `{}` of backend `{}`",
                args.call, args.id
            )
        })?;
    let call = Call {
        id: &args.id,
        conn: &conn,
        call: args.call.clone(),
        value: ValueShown::UnlessNull,
        after: args.after,
    };
    call.follow(stream, ctrl_c).await
}

/// When the value at the end of a call is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ValueShown {
    /// `eval`: always.
    Always,
    /// `exec`, `attach`: unless it is `null` (statements without a trailing expression).
    UnlessNull,
}

/// A call being followed.
pub(super) struct Call<'a> {
    pub id: &'a BackendId,
    pub conn: &'a Connection,
    pub call: String,
    pub value: ValueShown,
    /// The seq of the last event already shown.
    pub after: u64,
}

impl Call<'_> {
    /// Print the call's events as they come; the exit code is the call's.
    pub async fn follow(
        mut self,
        mut stream: CallStream,
        mut ctrl_c: CtrlC,
    ) -> anyhow::Result<ExitCode> {
        let (id, call) = (self.id.clone(), self.call.clone());
        let mut interrupted = false;
        loop {
            let event = tokio::select! {
                event = stream.next() => event,
                () = ctrl_c.recv() => {
                    if interrupted {
                        let after = if self.after > 0 { format!(" --after {}", self.after) } else { String::new() };
                        eprintln!(
                            "Left the call running in backend {id} (call {call}); \
                             `beep-host attach {id} {call}{after}` follows it again, \
                             `beep-host interrupt {id}` interrupts it."
                        );
                        return Ok(ExitCode::from(INTERRUPTED));
                    }
                    interrupted = true;
                    eprintln!("Interrupting call {call} (Ctrl+C again leaves it running)");
                    tokio::spawn(send_interrupt(self.conn.clone(), id.clone(), call.clone()));
                    continue;
                }
            };
            let lost = |err: anyhow::Error, after: u64| {
                err.context(format!(
                    "Failed to follow call `{call}` of backend `{id}` (it may still run: \
                     `beep-host attach {id} {call} --after {after}` follows it again)"
                ))
            };
            let event = match event {
                Some(Ok(event)) => event,
                Some(Err(err)) => return Err(lost(err.into(), self.after)),
                None => return Err(lost(anyhow::anyhow!("the stream ended"), self.after)),
            };
            match event {
                CallEvent::Output {
                    stream: which,
                    seq,
                    data,
                    ..
                } => {
                    if seq <= self.after {
                        continue;
                    }
                    self.after = seq;
                    write_now(which, &data)?;
                }
                CallEvent::Dropped {
                    seq_from,
                    seq_to,
                    bytes,
                    ..
                } => {
                    self.after = self.after.max(seq_to);
                    eprintln!(
                        "[{bytes} bytes of output (events {seq_from} to {seq_to}) were dropped \
                         from the call's journal]"
                    );
                }
                CallEvent::End(end) => {
                    return match end.result {
                        Ok(reply) => {
                            // Output that came with the answer (a backend or op that did not stream).
                            if let Some(text) = reply.stdout.filter(|t| !t.is_empty()) {
                                write_now(OutputStream::Stdout, &text)?;
                            }
                            if let Some(text) = reply.stderr.filter(|t| !t.is_empty()) {
                                write_now(OutputStream::Stderr, &text)?;
                            }
                            if self.value == ValueShown::Always || !reply.value.is_null() {
                                print_json(&reply.value)?;
                            }
                            Ok(ExitCode::SUCCESS)
                        }
                        Err(remote) => {
                            let mut err = std::io::stderr().lock();
                            if !remote.traceback.is_empty() {
                                write!(err, "{}", remote.traceback)?;
                                if !remote.traceback.ends_with('\n') {
                                    writeln!(err)?;
                                }
                            }
                            if remote.type_name == "UnknownCall" {
                                writeln!(
                                    err,
                                    "error: Failed to find call `{call}` in backend `{id}`: {} \
                                     (`beep-host calls {id} --all` lists its calls)",
                                    remote.message
                                )?;
                                return Ok(ExitCode::FAILURE);
                            }
                            writeln!(
                                err,
                                "error: Python raised {}: {}",
                                remote.type_name, remote.message
                            )?;
                            if interrupted && remote.type_name == "KeyboardInterrupt" {
                                return Ok(ExitCode::from(INTERRUPTED));
                            }
                            Ok(ExitCode::FAILURE)
                        }
                    };
                }
            }
        }
    }
}

/// Write a chunk of the call's output where it was written, at once.
fn write_now(which: OutputStream, data: &str) -> std::io::Result<()> {
    match which {
        OutputStream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(data.as_bytes())?;
            out.flush()
        }
        OutputStream::Stderr => {
            let mut err = std::io::stderr().lock();
            err.write_all(data.as_bytes())?;
            err.flush()
        }
    }
}

/// Interrupt `call` over a connection of its own.
async fn send_interrupt(conn: Connection, id: BackendId, call: String) {
    let sent = async {
        let client = connect(&conn).await?;
        anyhow::Ok(client.interrupt_call(&call).await?)
    };
    match sent.await {
        Ok(false) => eprintln!("Call {call} was no longer running."),
        Ok(true) => {}
        Err(err) => super::output::print_error(&err.context(format!(
            "Failed to interrupt call `{call}` of backend `{id}`"
        ))),
    }
}
