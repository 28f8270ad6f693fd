//! What the process tests share: running `exelixi`, and watching the processes it starts.
#![allow(dead_code)] // each test binary uses its part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A run of 40 generations, slow enough (about 40 ms a generation here) that a test
/// reacting to a generation's line acts within that generation's next step: the whole
/// population of 20 000 bred every generation (`--offspring 1`; the default, a fifth,
/// would make a generation five times shorter).
pub const FORTY_GENERATIONS: &[&str] = &[
    "--seed",
    "7",
    "--problem",
    "rastrigin",
    "--size",
    "30",
    "--pop",
    "20000",
    "--offspring",
    "1",
    "--gens",
    "40",
    "--threads",
    "1",
    "--max-indiv",
    "100000000",
];

/// `exelixi` with `args`, to completion.
pub fn exelixi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exelixi")).args(args).output().expect("exelixi runs")
}

/// The processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = rest.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            found.push(child);
        }
    }
    found
}

/// Whether `pid` exists (a zombie counts).
pub fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Sends `sig` to `pid`; whether it was there to receive it.
pub fn try_signal(pid: u32, sig: &str) -> bool {
    Command::new("kill").args([sig, &pid.to_string()]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Sends `sig` (e.g. "-KILL") to `pid`.
pub fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
}

/// Waits for `child` to exit, failing the test after `limit`.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the framework did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything left on a child's piped stderr.
pub fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut s).unwrap();
    s
}

/// Running processes of this `exelixi` binary whose first argument is `role` ("executor",
/// "worker"), as pids; zombies excluded.
pub fn processes(role: &str) -> Vec<u32> {
    let exe = env!("CARGO_BIN_EXE_exelixi").as_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        if args.first() == Some(&exe) && args.get(1) == Some(&role.as_bytes()) && !zombie(pid) {
            found.push(pid);
        }
    }
    found
}

/// Starts `command` with piped stdout and stderr, reads its first line (a run's `gen 0`)
/// and keeps reading the rest in the background, as a terminal would.
pub fn spawn_past_first_line(command: &mut Command) -> Child {
    use std::io::{BufRead, BufReader};
    let mut child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("gen\t0\t"), "{first:?}");
    // A closed pipe would be a different story (tested on its own).
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    child
}

/// A run whose stdout lines are collected as they come.
pub struct Watched {
    pub child: Child,
    lines: Receiver<String>,
    out: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

pub fn watch(args: &[String]) -> Watched {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exelixi"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = channel();
    let out = Arc::new(Mutex::new(String::new()));
    let all = out.clone();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { return };
            all.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = tx.send(line);
        }
    });
    Watched { child, lines, out, reader: Some(reader) }
}

impl Watched {
    /// Waits for the line of generation `g`.
    pub fn at_generation(&self, g: u32) {
        let prefix = format!("gen\t{g}\t");
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(60)).expect("the generation's line within 60 s");
            if line.starts_with(&prefix) {
                return;
            }
        }
    }

    /// The run's live worker processes (its children), by pid.
    pub fn workers(&self) -> Vec<u32> {
        let mut w: Vec<u32> = children_of(self.child.id()).into_iter().filter(|p| !zombie(*p)).collect();
        w.sort_unstable();
        w
    }

    /// Freezes the framework, sends `sig` to the process `pick` names, thaws it: whatever
    /// the signal does lands in the step after the generation just printed.
    pub fn hit(&self, sig: &str, pick: impl FnOnce() -> u32) -> u32 {
        signal(self.child.id(), "-STOP");
        let victim = pick();
        signal(victim, sig);
        signal(self.child.id(), "-CONT");
        victim
    }

    /// Exit status, stdout, stderr.
    pub fn finish(mut self, limit: Duration) -> (std::process::ExitStatus, String, String) {
        let status = wait_with_deadline(&mut self.child, limit);
        self.reader.take().unwrap().join().unwrap();
        let err = stderr_of(&mut self.child);
        let out = self.out.lock().unwrap().clone();
        (status, out, err)
    }
}

/// Whether `pid` is gone or a zombie.
pub fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
}

/// The first run's output up to (not including) generation `g`'s line, then the second's.
pub fn joined(first: &str, second: &str) -> String {
    let g = second.lines().next().and_then(|l| l.split('\t').nth(1)).expect("the resumed run's first generation");
    let cut = first.find(&format!("gen\t{g}\t")).unwrap_or(first.len());
    format!("{}{second}", &first[..cut])
}

/// A real headless Chromium (Debian's, installed by `tools/chromium/install`, named by
/// EXELIXI_CHROMIUM in `tools/test`) and plain HTTP, for the status page's tests.
pub mod browser {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    pub fn chromium() -> String {
        std::env::var("EXELIXI_CHROMIUM").unwrap_or_else(|_| {
            panic!(
                "EXELIXI_CHROMIUM is not set. This test needs a real headless Chromium: run it through `tools/test` \
                 (which installs Debian's chromium with tools/chromium/install), or set EXELIXI_CHROMIUM=/usr/bin/chromium"
            )
        })
    }

    /// Chromium, headless, as this machine's closed network wants it, with a fresh profile.
    pub fn browser(profile: &std::path::Path) -> Command {
        let mut c = Command::new(chromium());
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdin(Stdio::null());
        c
    }

    /// The page's DOM as Chromium has it after `budget` of virtual time (its script runs in it).
    pub fn dump_dom(profile: &std::path::Path, url: &str, budget: Duration) -> String {
        let mut c = browser(profile);
        if !budget.is_zero() {
            c.arg(format!("--virtual-time-budget={}", budget.as_millis()));
        }
        let out = bounded(c.args(["--dump-dom", url]));
        String::from_utf8(out).expect("the DOM is UTF-8")
    }

    /// Runs a browser command to completion within a minute; its stdout.
    pub fn bounded(command: &mut Command) -> Vec<u8> {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("chromium runs");
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            out
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "chromium failed: {status:?}");
        reader.join().unwrap()
    }

    /// The text of the element with `id` in a dumped DOM.
    pub fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
        let open = format!(r#"id="{id}">"#);
        let start = dom.find(&open).unwrap_or_else(|| panic!("no #{id} in the page: {dom}")) + open.len();
        &dom[start..start + dom[start..].find('<').unwrap()]
    }

    /// The vertices of the plot's best-fitness line in a dumped DOM.
    pub fn plot_vertices(dom: &str) -> usize {
        let start = dom.find(r#"class="series-best""#).expect("the plot's best line");
        let points = &dom[start..];
        let points = &points[points.find(r#"points=""#).unwrap() + 8..];
        points[..points.find('"').unwrap()].split_whitespace().count()
    }

    /// A plain HTTP/1.1 GET: status line and body.
    pub fn get(addr: &str, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(addr).expect("the status server answers");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
        let mut all = String::new();
        s.read_to_string(&mut all).unwrap();
        let (head, body) = all.split_once("\r\n\r\n").expect("an HTTP answer");
        (head.to_string(), body.to_string())
    }
}
