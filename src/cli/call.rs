//! `call`, `exec`, `eval`, `interrupt`: operations on a running backend.
//!
//! `exec` and `eval` print the call's output as it is written (see [`super::calls`]).
//! Ctrl+C during a call interrupts that call (the `interrupt` op, sent over a second
//! connection, raises `KeyboardInterrupt` in it); a second Ctrl+C leaves it running and
//! returns.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value};

use beep_host::Paths;
use beep_host::backend::client::new_call_id;
use beep_host::backend::{self, BackendClient, BackendId, Connection, Op};

use super::calls::{Call, ValueShown, call_id};
use super::output::print_json;

/// The exit status after Ctrl+C, as shells report a process ended by SIGINT.
pub(super) const INTERRUPTED: u8 = 130;

#[derive(Debug, Args)]
pub struct CallArgs {
    /// The backend (an id from `beep-host ps`).
    id: BackendId,
    /// The operation: exec, eval, import, create, call, getattr, setattr, release, handles,
    /// info, interrupt, shutdown.
    op: String,
    /// The operation's fields as a JSON object, e.g. '{"expr": "1+1"}'.
    json: Option<String>,
    /// Run in this session: a separate namespace with its own handles (default: "default").
    #[arg(long)]
    session: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The backend (an id from `beep-host ps`).
    id: BackendId,
    /// Python statements; the value of a trailing expression is returned.
    code: String,
    /// Stop the code with a TimeoutError after this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
    timeout: Option<f64>,
    /// Run in this session: a separate namespace with its own handles (default: "default").
    #[arg(long)]
    session: Option<String>,
    /// Name the call (for `beep-host attach`); default: a fresh `cli-...` id.
    #[arg(long, value_parser = call_id)]
    call: Option<String>,
    /// Print nothing until the end, then the whole answer as JSON: {stdout, stderr, value}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The backend (an id from `beep-host ps`).
    id: BackendId,
    /// A Python expression.
    expr: String,
    /// Run in this session: a separate namespace with its own handles (default: "default").
    #[arg(long)]
    session: Option<String>,
    /// Name the call (for `beep-host attach`); default: a fresh `cli-...` id.
    #[arg(long, value_parser = call_id)]
    call: Option<String>,
}

#[derive(Debug, Args)]
pub struct InterruptArgs {
    /// The backend (an id from `beep-host ps`).
    id: BackendId,
    /// Only interrupt this call (if it is the one running).
    #[arg(long, value_parser = call_id)]
    call: Option<String>,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        _ => Err(format!("`{text}` is not a positive number of seconds")),
    }
}

/// How to reach the backend, from the daemon.
pub(super) async fn connection(id: &BackendId) -> anyhow::Result<Connection> {
    let daemon = beep_host::daemon::DaemonClient::connect(&Paths::from_env()?).await?;
    Ok(daemon.connection(id).await?)
}

pub(super) async fn connect(c: &Connection) -> Result<Box<dyn BackendClient>, backend::Error> {
    Ok(backend::client::connect(c.transport, &c.address, &c.token).await?)
}

pub async fn call(args: CallArgs) -> anyhow::Result<ExitCode> {
    let fields: Map<String, Value> = match args.json.as_deref() {
        None | Some("") => Map::new(),
        Some(text) => match serde_json::from_str(text)
            .with_context(|| format!("Failed to parse `{text}` as JSON"))?
        {
            Value::Object(fields) => fields,
            _ => bail!("Failed to use `{text}`: the fields must be a JSON object"),
        },
    };
    run_op(
        &args.id,
        Op::from_parts(&args.op, fields),
        args.session.as_deref(),
    )
    .await
}

pub async fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let op = Op::Exec {
        code: args.code,
        timeout: args.timeout,
    };
    if args.json {
        return run_op(&args.id, op, args.session.as_deref()).await;
    }
    run_live(
        &args.id,
        op,
        args.session.as_deref(),
        args.call,
        ValueShown::UnlessNull,
    )
    .await
}

pub async fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let op = Op::Eval { expr: args.expr };
    run_live(
        &args.id,
        op,
        args.session.as_deref(),
        args.call,
        ValueShown::Always,
    )
    .await
}

pub async fn interrupt(args: InterruptArgs) -> anyhow::Result<ExitCode> {
    let client = connect(&connection(&args.id).await?).await?;
    let running = match &args.call {
        Some(call) => client.interrupt_call(call).await?,
        None => client.request(Op::Interrupt, None).await?.value == Value::Bool(true),
    };
    match (&args.call, running) {
        (None, true) => println!("Interrupted the running call of backend {}", args.id),
        (None, false) => println!("No call was running in backend {}", args.id),
        (Some(call), true) => println!("Interrupted call {call} of backend {}", args.id),
        (Some(call), false) => println!("Call {call} was not running in backend {}", args.id),
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `op` as a named live call and print its output as it comes.
async fn run_live(
    id: &BackendId,
    op: Op,
    session: Option<&str>,
    call: Option<String>,
    value: ValueShown,
) -> anyhow::Result<ExitCode> {
    let conn = connection(id).await?;
    let client = connect(&conn).await?;
    // Listen before the call is sent, so that no Ctrl+C meets the default handler.
    let ctrl_c = CtrlC::listen().context("Failed to listen for Ctrl+C")?;
    let call = call.unwrap_or_else(|| new_call_id("cli"));
    let stream = client.request_stream(op, session, Some(&call)).await?;
    let call = Call {
        id,
        conn: &conn,
        call,
        value,
        after: 0,
    };
    call.follow(stream, ctrl_c).await
}

/// Send one operation; print the answer as JSON, or the Python traceback and fail.
async fn run_op(id: &BackendId, op: Op, session: Option<&str>) -> anyhow::Result<ExitCode> {
    let is_exec = matches!(op, Op::Exec { .. });
    let conn = connection(id).await?;
    let client = connect(&conn).await?;
    // Listen before the call is sent, so that no Ctrl+C meets the default handler.
    let mut ctrl_c = CtrlC::listen().context("Failed to listen for Ctrl+C")?;
    let request = client.request(op, session);
    tokio::pin!(request);
    let mut interrupted = false;
    let result = loop {
        tokio::select! {
            result = &mut request => break result,
            () = ctrl_c.recv() => {
                if interrupted {
                    eprintln!(
                        "Left the call running in backend {id}; \
                         `beep-host interrupt {id}` interrupts it."
                    );
                    return Ok(ExitCode::from(INTERRUPTED));
                }
                interrupted = true;
                eprintln!("Interrupting the call (Ctrl+C again leaves it running)");
                tokio::spawn(send_interrupt(conn.clone(), id.clone()));
            }
        }
    };
    match result {
        Ok(reply) if is_exec || reply.stdout.is_some() => {
            print_json(&serde_json::json!({
                "stdout": reply.stdout.unwrap_or_default(),
                "stderr": reply.stderr.unwrap_or_default(),
                "value": reply.value,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(reply) => {
            print_json(&reply.value)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(backend::client::Error::Remote(remote)) => {
            let mut err = std::io::stderr().lock();
            if !remote.traceback.is_empty() {
                write!(err, "{}", remote.traceback)?;
                if !remote.traceback.ends_with('\n') {
                    writeln!(err)?;
                }
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
        Err(err) => Err(err.into()),
    }
}

/// The `interrupt` op over a connection of its own (the call's connection is waiting for
/// the call's answer).
async fn send_interrupt(conn: Connection, id: BackendId) {
    let sent = async {
        let client = connect(&conn).await?;
        anyhow::Ok(client.request(Op::Interrupt, None).await?)
    };
    match sent.await {
        Ok(reply) if reply.value == Value::Bool(false) => {
            eprintln!("The backend had no call running to interrupt.");
        }
        Ok(_) => {}
        Err(err) => {
            super::output::print_error(&err.context(format!("Failed to interrupt backend `{id}`")))
        }
    }
}

/// Ctrl+C, caught from the moment it is created.
pub(super) struct CtrlC {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    #[cfg(windows)]
    signal: tokio::signal::windows::CtrlC,
}

impl CtrlC {
    pub(super) fn listen() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
            #[cfg(windows)]
            signal: tokio::signal::windows::ctrl_c()?,
        })
    }

    pub(super) async fn recv(&mut self) {
        if self.signal.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}
