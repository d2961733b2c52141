//! The CLI's `Reporter`: an indicatif bar on a terminal, nothing on a pipe.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

use beep_host::{Progress, Reporter};

/// Renders progress on stderr when it is a terminal and `enabled`.
pub struct BarReporter {
    bar: Option<ProgressBar>,
}

impl BarReporter {
    pub fn new(enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(spinner_style());
            bar
        });
        Self { bar }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:>10} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Reporter for BarReporter {
    fn report(&self, progress: Progress) {
        let Some(bar) = &self.bar else { return };
        match progress {
            Progress::Resolve { what } => {
                bar.set_prefix("resolve");
                bar.set_message(what);
                bar.tick();
            }
            Progress::Download { bytes, total } => {
                if bar.prefix() != "download" {
                    bar.set_prefix("download");
                    bar.set_message("");
                    bar.set_style(bytes_style());
                }
                bar.set_length(total.unwrap_or(0));
                bar.set_position(bytes);
            }
            Progress::Verify => {
                bar.set_style(spinner_style());
                bar.set_prefix("verify");
                bar.set_message("sha256");
                bar.tick();
            }
            Progress::Extract { entries, total } => {
                bar.set_style(spinner_style());
                bar.set_prefix("extract");
                bar.set_message(match total {
                    Some(t) => format!("{entries}/{t} entries"),
                    None => format!("{entries} entries"),
                });
                bar.tick();
            }
            Progress::Finalize => {
                bar.set_prefix("finalize");
                bar.set_message("");
                bar.tick();
            }
            Progress::Output { line } => bar.println(line),
            Progress::Done { message } => {
                bar.set_prefix("done");
                bar.set_message(message);
            }
        }
    }
}
