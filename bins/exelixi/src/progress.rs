//! The terminal: a one-line progress bar on stderr (drawn only when stderr is a terminal),
//! and every other stderr line — messages, logs — and, when stdout is a terminal too, every
//! report line written around it: the bar is cleared first and drawn again after, so that
//! no line shares the bar's.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ga_core::{GenerationStats, Params};

struct Bar {
    started: Instant,
    last_draw: Option<Instant>,
    n_gen: u32,
    max_indiv: u64,
    /// The bar as last drawn (without the leading `\r`), if it is on the screen.
    shown: Option<String>,
}

struct Terminal {
    /// Whether stderr is a terminal (else no bar is drawn).
    stderr_tty: bool,
    /// Whether stdout is a terminal too, so its lines land where the bar is.
    stdout_tty: bool,
    bar: Option<Bar>,
}

static TERMINAL: Mutex<Option<Terminal>> = Mutex::new(None);

fn terminal() -> MutexGuard<'static, Option<Terminal>> {
    let mut t = TERMINAL.lock().unwrap_or_else(PoisonError::into_inner);
    t.get_or_insert_with(|| Terminal {
        stderr_tty: std::io::stderr().is_terminal(),
        stdout_tty: std::io::stdout().is_terminal(),
        bar: None,
    });
    t
}

const CLEAR: &str = "\r\x1b[2K";

/// `h:mm:ss` or `m:ss`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

impl Bar {
    fn text(&self, s: &GenerationStats) -> String {
        // The run ends at whichever limit comes first.
        let done = (f64::from(s.generation + 1) / f64::from(self.n_gen.max(1)))
            .max(s.total_indiv as f64 / self.max_indiv.max(1) as f64)
            .clamp(0.0, 1.0);
        let width = 24;
        let filled = (done * width as f64).round() as usize;
        let elapsed = self.started.elapsed();
        let left = if done > 0.0 && done < 1.0 {
            format!(", about {} left", clock(elapsed.mul_f64((1.0 - done) / done)))
        } else {
            String::new()
        };
        format!(
            "[{}{}] gen {} evaluated {} best {:.4} · {}{left}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            s.generation,
            s.total_indiv,
            s.best,
            clock(elapsed),
        )
    }
}

/// A run starts: its bar will measure progress against `params`' limits.
pub fn start(params: &Params) {
    let mut t = terminal();
    if let Some(t) = t.as_mut().filter(|t| t.stderr_tty) {
        t.bar = Some(Bar {
            started: Instant::now(),
            last_draw: None,
            n_gen: params.n_gen,
            max_indiv: params.max_indiv,
            shown: None,
        });
    }
}

/// Draws the bar for the generation `s` (at most every 50 ms).
pub fn update(s: &GenerationStats) {
    let mut t = terminal();
    let Some(bar) = t.as_mut().and_then(|t| t.bar.as_mut()) else { return };
    if bar.last_draw.is_some_and(|at| at.elapsed() < Duration::from_millis(50)) {
        return;
    }
    bar.last_draw = Some(Instant::now());
    let text = bar.text(s);
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{CLEAR}{text}");
    let _ = err.flush();
    bar.shown = Some(text);
}

/// Runs `write` (which writes report lines to stdout) with the bar off the screen when
/// stdout shares the terminal, and draws the bar again after.
pub fn around_stdout<T>(write: impl FnOnce() -> T) -> T {
    let mut t = terminal();
    let shared = t.as_ref().is_some_and(|t| t.stdout_tty);
    let shown = t.as_mut().and_then(|t| t.bar.as_mut()).and_then(|b| b.shown.as_ref()).filter(|_| shared).cloned();
    if shown.is_some() {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{CLEAR}");
        let _ = err.flush();
    }
    let out = write();
    if let Some(text) = shown {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{text}");
        let _ = err.flush();
    }
    out
}

/// Writes `bytes` (whole lines) to stderr with the bar cleared first and drawn again after.
pub fn write_stderr(bytes: &[u8]) -> std::io::Result<()> {
    let t = terminal();
    let shown = t.as_ref().and_then(|t| t.bar.as_ref()).and_then(|b| b.shown.as_deref());
    let mut err = std::io::stderr().lock();
    if shown.is_some() {
        err.write_all(CLEAR.as_bytes())?;
    }
    err.write_all(bytes)?;
    if let Some(text) = shown {
        err.write_all(text.as_bytes())?;
    }
    err.flush()
}

/// Prints `line` on stderr, around the bar.
pub fn say(line: &str) {
    let _ = write_stderr(format!("{line}\n").as_bytes());
}

/// The run is over: the bar goes.
pub fn finish() {
    let mut t = terminal();
    if let Some(bar) = t.as_mut().and_then(|t| t.bar.take()) {
        if bar.shown.is_some() {
            let _ = write!(std::io::stderr(), "{CLEAR}");
        }
    }
}

/// `tracing`'s writer: every log line goes to stderr around the bar.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_stderr(buf).map(|()| buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_as_minutes_or_hours() {
        assert_eq!(clock(Duration::from_secs(7)), "0:07");
        assert_eq!(clock(Duration::from_secs(754)), "12:34");
        assert_eq!(clock(Duration::from_secs(3 * 3600 + 61)), "3:01:01");
    }

    #[test]
    fn the_bar_estimates_what_is_left_from_the_nearer_limit() {
        let bar = Bar {
            started: Instant::now() - Duration::from_secs(10),
            last_draw: None,
            n_gen: 1000,
            max_indiv: 1000,
            shown: None,
        };
        let s = GenerationStats {
            generation: 99,
            size: 10,
            total_indiv: 500,
            mse: 0.0,
            max: 0.5,
            median: 0.5,
            mean: 0.5,
            best: 0.5,
            cutoff: 0.0,
            duplicates: 0,
        };
        let text = bar.text(&s);
        // Half the evaluation budget in 10 s: about 10 s left.
        assert!(
            text.starts_with("[############............] gen 99 evaluated 500 best 0.5000 · 0:10, about 0:10 left"),
            "{text}"
        );
    }
}
