//! Draws a [`FlowState`] as an indicatif bar (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};
use sota_flow::{FlowState, Step};

/// A bar that follows a flow through its steps.
pub struct Bar {
    bar: ProgressBar,
    step: Step,
    /// The bar's style is the one with bytes and rate.
    sized: bool,
}

fn label(step: Step) -> &'static str {
    match step {
        Step::Idle => "idle",
        Step::Connecting => "connecting",
        Step::WaitingForMcu => "waiting",
        Step::Verifying => "checking",
        Step::Erasing => "erasing",
        Step::Writing => "writing",
        Step::ReadingBack => "verifying",
        Step::Updating => "updating",
        Step::Done => "done",
        Step::Failed => "failed",
    }
}

/// A step with a size: a bar, bytes and rate.
fn sized() -> ProgressStyle {
    ProgressStyle::with_template("{msg:10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A step without one (waiting, updating): the time spent in it.
fn sizeless() -> ProgressStyle {
    ProgressStyle::with_template("{msg:10} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Bar {
    /// An empty bar.
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(sizeless());
        Bar {
            bar,
            step: Step::Idle,
            sized: false,
        }
    }

    /// Shows `state`.
    pub fn show(&mut self, state: FlowState) {
        if state.step != self.step {
            self.step = state.step;
            self.bar.reset();
            self.bar.set_message(label(state.step));
        }
        if (state.total > 0) != self.sized {
            self.sized = state.total > 0;
            self.bar
                .set_style(if self.sized { sized() } else { sizeless() });
        }
        self.bar.set_length(state.total);
        self.bar.set_position(state.done);
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: impl AsRef<str>) {
        self.bar.suspend(|| eprintln!("{}", line.as_ref()));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
