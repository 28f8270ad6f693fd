//! What the process tests share: running `exelixi`, and watching the processes it starts.
#![allow(dead_code)] // each test binary uses its part

use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

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
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
            .unwrap_or(true);
        if args.first() == Some(&exe) && args.get(1) == Some(&role.as_bytes()) && !zombie {
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
