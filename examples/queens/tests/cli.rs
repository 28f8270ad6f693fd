//! The example's own binary, as a user runs it: its problem over worker processes (its own
//! `worker` command, started by its own `run --workers`), in the original's format.

use std::process::{Command, Output};

fn queens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_queens")).args(args).output().expect("the queens binary runs")
}

fn text(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Diagonal clashes of a placement (row i, column cols[i]), counted here independently.
fn clashes(cols: &[i64]) -> usize {
    (0..cols.len())
        .flat_map(|i| (i + 1..cols.len()).map(move |j| (i, j)))
        .filter(|&(i, j)| cols[i].abs_diff(cols[j]) as usize == j - i)
        .count()
}

#[test]
fn its_own_problem_runs_over_two_worker_processes_in_the_originals_format() {
    let args = ["run", "--workers", "2", "--size", "10", "--seed", "3"];
    let out = text(&queens(&args));
    assert_eq!(out, text(&queens(&args)), "a seed gives one output");
    let lines: Vec<&str> = out.lines().collect();
    let (last, report) = lines.split_last().unwrap();
    assert!(last.starts_with("# stopped: target fitness reached at generation "), "{last}");
    let gens = report.iter().filter(|l| l.starts_with("gen\t")).count();
    assert!(gens >= 1);
    for (n, line) in report.iter().take(gens).enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!([f[0], f[1], f[2], f[3]], ["gen", &n.to_string(), "size", "100"], "{line}");
        assert_eq!(f.len(), 14, "{line}");
    }
    let indivs = &report[gens..];
    assert!(!indivs.is_empty() && indivs.iter().all(|l| l.starts_with("indiv\t")), "{out}");
    // The best is a solution: fitness 1, no clash by the binary's measure and by ours.
    let best: Vec<&str> = indivs[0].split('\t').collect();
    assert_eq!((best[1], best[4], best[5]), ("1.0000", "clashes", "0"), "{}", indivs[0]);
    let cols: Vec<i64> = serde_json::from_str(best[3]).unwrap();
    let mut sorted = cols.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..10).collect::<Vec<i64>>(), "a permutation");
    assert_eq!(clashes(&cols), 0, "{cols:?}");
}

#[test]
fn one_worker_prints_what_the_run_in_process_prints() {
    let local = text(&queens(&["run", "--size", "9", "--seed", "5"]));
    assert_eq!(text(&queens(&["run", "--workers", "1", "--size", "9", "--seed", "5"])), local);
}

#[test]
fn its_catalog_is_its_own() {
    let o = queens(&["run", "--problem", "onemax"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("invalid problem: \"onemax\" (expected one of: queens)"), "{err}");
    let help = String::from_utf8(queens(&["run", "--help"]).stdout).unwrap();
    assert!(help.contains("Usage: queens run") && help.contains("queens: N queens"), "{help}");
}

/// On the real Mesos master of `tools/test` (MESOS_MASTER): the agents start this binary as
/// the executor, and its workers serve this problem; the output is what local workers print.
#[test]
fn on_mesos_the_agents_run_this_binary_and_print_what_local_workers_print() {
    let master = std::env::var("MESOS_MASTER").unwrap_or_else(|_| {
        panic!("MESOS_MASTER is not set: run the tests with tools/test, which starts a real local Mesos")
    });
    let flags = ["--workers", "2", "--size", "10", "--seed", "3"];
    let local = text(&queens(&[&["run"][..], &flags].concat()));
    let on_mesos = queens(&[&["mesos", "--master", &master][..], &flags].concat());
    let err = String::from_utf8_lossy(&on_mesos.stderr).to_string();
    assert_eq!(text(&on_mesos), local, "{err}");
    // The executors were this binary: their telemetry came back through Mesos.
    assert_eq!(err.lines().filter(|l| l.starts_with("mesos: shard ") && l.contains("\"cpu_num\"")).count(), 2, "{err}");
    // Nothing of it is left (an executor told to shut down has the agent's grace period).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ours("executor").is_empty() || !ours("worker").is_empty() {
        assert!(std::time::Instant::now() < deadline, "left running: {:?} {:?}", ours("executor"), ours("worker"));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Live processes of this binary whose first argument is `role`.
fn ours(role: &str) -> Vec<u32> {
    let exe = env!("CARGO_BIN_EXE_queens").as_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let (Ok(cmd), Ok(stat)) =
            (std::fs::read(format!("/proc/{pid}/cmdline")), std::fs::read_to_string(format!("/proc/{pid}/stat")))
        else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let zombie = stat.rfind(')').is_some_and(|i| stat[i + 2..].starts_with('Z'));
        if args.first() == Some(&exe) && args.get(1) == Some(&role.as_bytes()) && !zombie {
            found.push(pid);
        }
    }
    found
}
