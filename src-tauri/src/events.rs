//! Typed events the core's progress and the supervisor's changes reach the UI through.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tauri::AppHandle;
use tauri_specta::Event;

use crate::dto::backends::{BackendRow, BackendState, LastExit};

/// One step of a runtime install (`request` is what the UI asked to install).
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct InstallProgress {
    pub request: String,
    pub progress: ProgressStep,
}

/// The core's `Progress`, as the UI sees it.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum ProgressStep {
    Resolve { what: String },
    Download { bytes: u64, total: Option<u64> },
    Verify,
    Extract { entries: u64, total: Option<u64> },
    Finalize,
    Output { line: String },
    Done { message: String },
}

impl From<beep_host::Progress> for ProgressStep {
    fn from(p: beep_host::Progress) -> Self {
        use beep_host::Progress as P;
        match p {
            P::Resolve { what } => Self::Resolve { what },
            P::Download { bytes, total } => Self::Download { bytes, total },
            P::Verify => Self::Verify,
            P::Extract { entries, total } => Self::Extract { entries, total },
            P::Finalize => Self::Finalize,
            P::Output { line } => Self::Output { line },
            P::Done { message } => Self::Done { message },
        }
    }
}

/// A line of output of a long environment task (create, install, remove, repair).
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct TaskOutput {
    /// The id the UI gave the task.
    pub task: String,
    pub line: String,
}

/// A backend changed state.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct BackendChanged {
    pub id: String,
    pub state: BackendState,
    pub pid: Option<u32>,
    /// How the last run ended, when it did.
    pub last_exit: Option<LastExit>,
}

/// Every backend, about once a second while any is known.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct BackendsTick {
    pub backends: Vec<BackendRow>,
}

/// A log line of a backend this app started.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct BackendLog {
    pub id: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub text: String,
}

/// The window is closing while backends this app started are running: the UI asks.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct CloseRequested {
    pub running: u32,
}

/// The core's `Reporter` for a runtime install: forwards progress as `InstallProgress`,
/// download steps at most every 50 ms (the last one always goes out).
pub struct InstallReporter {
    pub app: AppHandle,
    pub request: String,
    last: Mutex<Option<Instant>>,
}

impl InstallReporter {
    pub fn new(app: AppHandle, request: String) -> Self {
        Self {
            app,
            request,
            last: Mutex::new(None),
        }
    }
}

impl beep_host::Reporter for InstallReporter {
    fn report(&self, progress: beep_host::Progress) {
        if let beep_host::Progress::Download { bytes, total } = &progress {
            let finished = Some(*bytes) == *total;
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if !finished && last.is_some_and(|t| now - t < Duration::from_millis(50)) {
                return;
            }
            *last = Some(now);
        }
        let _ = InstallProgress {
            request: self.request.clone(),
            progress: progress.into(),
        }
        .emit(&self.app);
    }
}

/// The core's `Reporter` for environment tasks: every line of output as `TaskOutput`.
pub struct TaskReporter {
    pub app: AppHandle,
    pub task: String,
}

impl beep_host::Reporter for TaskReporter {
    fn report(&self, progress: beep_host::Progress) {
        let line = match progress {
            beep_host::Progress::Output { line } => line,
            beep_host::Progress::Done { message } => message,
            other => match ProgressStep::from(other) {
                ProgressStep::Resolve { what } => format!("resolving {what}"),
                _ => return,
            },
        };
        let _ = TaskOutput {
            task: self.task.clone(),
            line,
        }
        .emit(&self.app);
    }
}
