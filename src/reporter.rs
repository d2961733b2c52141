//! Progress of long operations, reported through a trait so the core never prints.
//!
//! The CLI renders it with indicatif; the GUI forwards it as typed events.

use serde::Serialize;

/// One step of a long operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Progress {
    /// Choosing what to install (`what` is the request, e.g. `3.12`).
    Resolve { what: String },
    /// Downloading: bytes so far and the total when known.
    Download { bytes: u64, total: Option<u64> },
    /// Checking the downloaded file's hash.
    Verify,
    /// Unpacking: entries so far and the total when known.
    Extract { entries: u64, total: Option<u64> },
    /// Moving into place and recording metadata.
    Finalize,
    /// A line of output from a tool (e.g. the package installer).
    Output { line: String },
    /// The operation finished.
    Done { message: String },
}

/// Receives progress. Implementations must be cheap: `report` is called on hot paths.
pub trait Reporter: Send + Sync {
    fn report(&self, progress: Progress);
}

/// Ignores progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn report(&self, _progress: Progress) {}
}

impl<F: Fn(Progress) + Send + Sync> Reporter for F {
    fn report(&self, progress: Progress) {
        self(progress)
    }
}
