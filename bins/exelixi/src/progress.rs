//! A one-line progress bar on stderr, drawn only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use ga_core::{GenerationStats, Params};

pub struct Progress {
    enabled: bool,
    last: Option<Instant>,
    n_gen: u32,
    max_indiv: u64,
}

impl Progress {
    pub fn new(params: &Params) -> Self {
        Self { enabled: std::io::stderr().is_terminal(), last: None, n_gen: params.n_gen, max_indiv: params.max_indiv }
    }

    pub fn update(&mut self, s: &GenerationStats) {
        if !self.enabled || self.last.is_some_and(|t| t.elapsed() < Duration::from_millis(50)) {
            return;
        }
        self.last = Some(Instant::now());
        // The run ends at whichever limit comes first.
        let done = (f64::from(s.generation + 1) / f64::from(self.n_gen))
            .max(s.total_indiv as f64 / self.max_indiv as f64)
            .clamp(0.0, 1.0);
        let width = 30;
        let filled = (done * width as f64).round() as usize;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K[{}{}] gen {} evaluated {} best {:.4}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            s.generation,
            s.total_indiv,
            s.best
        );
        let _ = err.flush();
    }

    pub fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
