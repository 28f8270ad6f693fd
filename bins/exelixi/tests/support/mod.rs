//! What the process tests share: running `exelixi`, and watching the processes it starts.
#![allow(dead_code)] // each test binary uses its part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A run of 40 generations, slow enough (about 40 ms a generation here) that a test
/// reacting to a generation's line acts within that generation's next step.
pub const FORTY_GENERATIONS: &[&str] = &[
    "--seed",
    "7",
    "--problem",
    "rastrigin",
    "--size",
    "30",
    "--pop",
    "20000",
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
