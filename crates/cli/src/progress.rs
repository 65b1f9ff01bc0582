//! Turns protocol progress into an indicatif bar (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};
use sota_link::endpoint::{Phase, Progress};

/// A bar that follows [`Progress`] through its phases.
pub struct Bar {
    bar: ProgressBar,
    phase: Option<Phase>,
}

impl Bar {
    /// An empty bar.
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Bar { bar, phase: None }
    }

    /// Shows `progress`.
    pub fn update(&mut self, progress: Progress) {
        if self.phase != Some(progress.phase) {
            self.phase = Some(progress.phase);
            self.bar.reset();
            self.bar.set_message(match progress.phase {
                Phase::Connecting => "connecting",
                Phase::Erasing => "erasing",
                Phase::Writing => "writing",
                Phase::Verifying => "verifying",
            });
        }
        self.bar.set_length(progress.total);
        self.bar.set_position(progress.done);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
