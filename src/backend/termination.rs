//! Ending a backend process: the stop schedule (`shutdown` op, then SIGTERM, then SIGKILL)
//! for a child we own or a process another `beep-host` started, and the signals themselves.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::process::Launched;

#[derive(Debug, Clone, Copy)]
pub enum Signal {
    Term,
    Kill,
}

/// Signal the backend's process group (it leads its own group).
pub fn signal_group(pid: u32, signal: Signal) {
    if pid == 0 {
        return;
    }
    #[cfg(unix)]
    {
        let sig = match signal {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        };
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            if libc::kill(-(pid as libc::pid_t), sig) != 0 {
                libc::kill(pid as libc::pid_t, sig);
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (pid, signal);
        let mut system = sysinfo::System::new();
        let spid = sysinfo::Pid::from_u32(pid);
        system.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[spid]), false);
        if let Some(process) = system.process(spid) {
            process.kill();
        }
    }
}

/// The stop schedule: `shutdown` op first, SIGTERM at 2 s, SIGKILL at 4 s.
pub const TERM_AFTER: Duration = Duration::from_secs(2);
pub const KILL_AFTER: Duration = Duration::from_secs(4);

/// End a child we own: after `shutdown` was asked, escalate to signals (Windows: end its
/// job at once, as there is nothing like SIGTERM).
pub async fn stop_child(launched: &mut Launched, began: Instant) -> Option<ExitStatus> {
    let remaining = |at: Duration| at.saturating_sub(began.elapsed());
    let pid = launched.pid;
    let wait = tokio::time::timeout(remaining(TERM_AFTER), launched.child.wait());
    if let Ok(Ok(status)) = wait.await {
        return Some(status);
    }
    tracing::debug!(pid, "backend ignored shutdown; SIGTERM");
    signal_launched(launched, Signal::Term);
    let wait = tokio::time::timeout(remaining(KILL_AFTER), launched.child.wait());
    if let Ok(Ok(status)) = wait.await {
        return Some(status);
    }
    tracing::debug!(pid, "backend ignored SIGTERM; SIGKILL");
    signal_launched(launched, Signal::Kill);
    launched.child.wait().await.ok()
}

/// End a child that does not answer (unhealthy, over its memory limit): SIGKILL to its
/// group at once (a stopped process takes no SIGTERM), then reap it.
pub async fn kill_child(launched: &mut Launched) -> Option<ExitStatus> {
    signal_launched(launched, Signal::Kill);
    launched.child.wait().await.ok()
}

/// Signal a child we own: its process group; on Windows, terminate its job.
fn signal_launched(launched: &Launched, signal: Signal) {
    #[cfg(windows)]
    if let Some(job) = &launched.job {
        match job.terminate() {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(pid = launched.pid, %err, "Failed to terminate the backend's job")
            }
        }
    }
    signal_group(launched.pid, signal);
}

/// End a process another `beep-host` started (no child handle: poll its liveness).
pub async fn stop_foreign(alive: impl Fn() -> bool, pid: u32, began: Instant) -> bool {
    let wait_until = |at: Duration| {
        let alive = &alive;
        async move {
            while began.elapsed() < at {
                if !alive() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            !alive()
        }
    };
    if wait_until(TERM_AFTER).await {
        return true;
    }
    signal_group(pid, Signal::Term);
    if wait_until(KILL_AFTER).await {
        return true;
    }
    signal_group(pid, Signal::Kill);
    wait_until(KILL_AFTER + Duration::from_secs(2)).await
}
