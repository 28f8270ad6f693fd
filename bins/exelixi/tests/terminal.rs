//! `exelixi run` in a real pseudo-terminal (util-linux `script`), stdout and stderr on the
//! same tty as in a person's terminal: the progress bar never shares a line with a report
//! line or a message, and the run says why it stopped.

use std::process::Command;

/// What a terminal shows for `raw` output: `\r` returns to the line's start, `ESC[2K`
/// clears the line, `\n` ends it; anything else overwrites the cell under the cursor.
fn screen(raw: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let (mut row, mut col): (Vec<char>, usize) = (Vec::new(), 0);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                rows.push(row.iter().collect());
                (row, col) = (Vec::new(), 0);
            }
            '\x1b' => {
                // CSI: ESC [ parameters final-byte; only "erase line" changes the screen here.
                let mut seq = String::new();
                for c in chars.by_ref() {
                    seq.push(c);
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
                if seq == "[2K" {
                    row.clear();
                }
            }
            c => {
                if col < row.len() {
                    row[col] = c;
                } else {
                    row.resize(col, ' ');
                    row.push(c);
                }
                col += 1;
            }
        }
    }
    if !row.is_empty() {
        rows.push(row.iter().collect());
    }
    rows
}

#[test]
fn in_a_terminal_no_report_line_shares_a_line_with_the_bar() {
    let exe = env!("CARGO_BIN_EXE_exelixi");
    // Long enough for the bar to be redrawn many times (every 50 ms at most): the whole
    // population bred every generation (--offspring 1), 180 000 evaluations.
    let command = format!(
        "{exe} run --problem rastrigin --size 30 --pop 3000 --gens 60 --offspring 1 --max-indiv 100000000 --threads 1 --seed 5"
    );
    let out = Command::new("script")
        .args(["--quiet", "--return", "--flush", "--command", &command, "/dev/null"])
        .env("RUST_LOG", "")
        .output()
        .expect("util-linux script runs");
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let raw = String::from_utf8_lossy(&out.stdout);
    let bars = raw.matches("\x1b[2K[").count();
    assert!(bars >= 3, "the bar was drawn only {bars} times: the test would prove nothing\n{raw:?}");
    let rows = screen(&raw);
    let reports: Vec<&String> = rows.iter().filter(|r| r.starts_with("gen\t") || r.starts_with("indiv\t")).collect();
    assert_eq!(rows.iter().filter(|r| r.starts_with("gen\t")).count(), 60, "{rows:#?}");
    for row in &rows {
        let bar = row.contains("] gen ") || row.contains("[#") || row.contains("[.");
        let report = row.contains("gen\t") || row.contains("indiv\t") || row.contains("# stopped");
        assert!(!(bar && report), "a report line shares the bar's line: {row:?}");
    }
    assert!(reports.iter().all(|r| !r.contains('\x1b')), "{reports:#?}");
    // The bar said how long the run took and what is left while it ran.
    assert!(raw.contains(" left"), "no estimate in the bar: {raw:?}");
    let last = rows.iter().rev().find(|r| !r.trim().is_empty()).unwrap();
    assert!(
        last.starts_with("# stopped: ") && last.contains("at generation 59"),
        "the last line says why the run stopped: {last:?}"
    );
}

#[test]
fn the_screen_model_shows_what_the_old_bar_did() {
    // The report line written after a bar that was not cleared lands on its line.
    let rows = screen("\r\x1b[2K[###...] gen 5 best 0.7gen\t6\tsize\n");
    assert_eq!(rows, ["[###...] gen 5 best 0.7gen\t6\tsize"]);
    let rows = screen("\r\x1b[2K[###...] gen 5\r\x1b[2Kgen\t6\tsize\n[###...] gen 6");
    assert_eq!(rows, ["gen\t6\tsize", "[###...] gen 6"]);
}
