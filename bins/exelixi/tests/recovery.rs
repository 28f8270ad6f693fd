//! Fault tolerance, as a user sees it: workers SIGKILLed or hung mid-run are replaced and
//! the run prints exactly what the uninterrupted run prints; a framework SIGKILLed with
//! `--checkpoint` is finished by `--resume`, and the two outputs join into the
//! uninterrupted one. Real processes, real gRPC, real files.

mod support;

use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use support::{signal, watch};

/// `run` of [`support::FORTY_GENERATIONS`] over `workers`, with `extra` flags (each
/// replacing the same flag there).
fn args(workers: Option<&str>, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> =
        std::iter::once("run").chain(support::FORTY_GENERATIONS.iter().copied()).map(String::from).collect();
    if let Some(n) = workers {
        a.extend(["--workers".to_string(), n.to_string()]);
    }
    for pair in extra.chunks(2) {
        match a.iter().position(|x| x == pair[0]) {
            Some(i) => a[i + 1] = pair[1].to_string(),
            None => a.extend(pair.iter().map(|s| s.to_string())),
        }
    }
    a
}

/// The uninterrupted run's stdout, in process or over 3 workers (a run is a function of
/// its shard count: one baseline per count).
fn baseline(workers: Option<&str>) -> String {
    static THREE: OnceLock<String> = OnceLock::new();
    static ONE: OnceLock<String> = OnceLock::new();
    let cell = if workers.is_some() { &THREE } else { &ONE };
    cell.get_or_init(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_exelixi")).args(args(workers, &[])).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    })
    .clone()
}

/// Hits the second of the run's three workers by pid (after a recovery, maybe the
/// replacement) with `sig`.
fn hit_worker(run: &support::Watched, sig: &str) -> u32 {
    run.hit(sig, || {
        let workers = run.workers();
        assert_eq!(workers.len(), 3, "{workers:?}");
        workers[1]
    })
}

fn assert_no_workers_left() {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !support::processes("worker").is_empty() {
        assert!(std::time::Instant::now() < deadline, "workers left: {:?}", support::processes("worker"));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Tests that start workers take turns: `assert_no_workers_left` sees every test's.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_worker_killed_at_the_first_a_middle_or_the_last_generation_changes_nothing_in_the_output() {
    let _serial = serial();
    let expected = baseline(Some("3"));
    // Generation 38's line comes before the last step (to generation 39) and the report.
    for (g, restored) in
        [(0, "starts again from generation 0"), (20, "restored to generation 20"), (38, "restored to generation 30")]
    {
        let run = watch(&args(Some("3"), &[]));
        run.at_generation(g);
        let victim = hit_worker(&run, "-KILL");
        let (status, out, err) = run.finish(Duration::from_secs(120));
        assert!(status.success(), "killed at generation {g}: {err}");
        assert_eq!(out, expected, "killed at generation {g}: {err}");
        assert_eq!(err.matches("recovery ").count(), 1, "{err}");
        assert!(err.contains(&format!("recovery 1 of 3: lost the worker of shard 1 (pid {victim}")), "{err}");
        assert!(err.contains("killed by signal 9") && err.contains(restored), "generation {g}: {err}");
        assert_no_workers_left();
    }
}

#[test]
fn two_workers_killed_in_one_run_change_nothing_in_the_output() {
    let _serial = serial();
    let run = watch(&args(Some("3"), &[]));
    run.at_generation(8);
    let first = hit_worker(&run, "-KILL");
    run.at_generation(27);
    let second = hit_worker(&run, "-KILL");
    let (status, out, err) = run.finish(Duration::from_secs(120));
    assert!(status.success(), "{err}");
    assert_eq!(out, baseline(Some("3")), "{err}");
    assert!(err.contains(&format!("recovery 1 of 3: lost the worker of shard 1 (pid {first}")), "{err}");
    // The second victim is whichever worker sorted second then (maybe the replacement).
    assert!(
        err.contains("recovery 2 of 3: lost the worker of shard") && err.contains(&format!("pid {second}")),
        "{err}"
    );
    assert_no_workers_left();
}

#[test]
fn an_island_run_that_loses_a_worker_prints_what_it_would_have() {
    let _serial = serial();
    let islands = ["--migrate-every", "4", "--selection", "plus"];
    let expected = {
        let out = Command::new(env!("CARGO_BIN_EXE_exelixi")).args(args(Some("3"), &islands)).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_ne!(expected, baseline(Some("3")), "islands make another run");
    let run = watch(&args(Some("3"), &islands));
    // Snapshots come with the steps that pass a multiple of 10: generations 12, 20, 32, 40.
    run.at_generation(16);
    let victim = hit_worker(&run, "-KILL");
    let (status, out, err) = run.finish(Duration::from_secs(120));
    assert!(status.success(), "{err}");
    assert_eq!(out, expected, "{err}");
    assert!(err.contains(&format!("recovery 1 of 3: lost the worker of shard 1 (pid {victim}")), "{err}");
    assert!(err.contains("restored to generation 12") || err.contains("restored to generation 20"), "{err}");
    assert_no_workers_left();
}

#[test]
fn a_hung_worker_is_replaced_after_the_phase_timeout_and_changes_nothing() {
    let _serial = serial();
    let run = watch(&args(Some("3"), &["--phase-timeout", "2"]));
    run.at_generation(12);
    let victim = hit_worker(&run, "-STOP");
    let (status, out, err) = run.finish(Duration::from_secs(120));
    assert!(status.success(), "{err}");
    assert_eq!(out, baseline(Some("3")), "{err}");
    assert!(err.contains(&format!("(pid {victim}")) && err.contains("the worker is hung"), "{err}");
    assert!(err.contains("recovery 1 of 3") && err.contains("restored to generation 10"), "{err}");
    // The stopped process was killed with the run (a stopped process takes SIGKILL).
    assert_no_workers_left();
}

#[test]
fn losses_beyond_max_recoveries_end_the_run_naming_the_worker() {
    let _serial = serial();
    let run = watch(&args(Some("3"), &["--max-recoveries", "1"]));
    run.at_generation(5);
    hit_worker(&run, "-KILL");
    run.at_generation(25);
    let second = hit_worker(&run, "-KILL");
    let (status, _, err) = run.finish(Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("recovery 1 of 1"), "{err}");
    assert!(err.contains(&format!("(pid {second}")) && err.contains("after 1 recoveries, the most allowed"), "{err}");
    assert_no_workers_left();
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("exelixi-recovery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_killed_framework_is_resumed_from_its_checkpoint_and_the_outputs_join_into_the_uninterrupted_one() {
    let _serial = serial();
    for workers in [None, Some("3")] {
        let dir = scratch(if workers.is_some() { "framework-3" } else { "framework-1" });
        let checkpoint = ["--checkpoint", dir.to_str().unwrap(), "--checkpoint-every", "4"];
        let run = watch(&args(workers, &checkpoint));
        run.at_generation(22);
        signal(run.child.id(), "-KILL");
        let (_, first, _) = run.finish(Duration::from_secs(30));
        assert_no_workers_left();
        let resumed = Command::new(env!("CARGO_BIN_EXE_exelixi"))
            .args(args(workers, &["--resume", dir.to_str().unwrap()]))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&resumed.stderr);
        assert!(resumed.status.success(), "{err}");
        // The newest checkpoint on disk when it was killed: the writer may lag a few
        // generations behind the run (it never holds it up).
        let from: u32 = err
            .split("(generation ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .and_then(|g| g.parse().ok())
            .unwrap_or_else(|| panic!("{err}"));
        assert!(from > 0 && from <= 22 && from % 4 == 0, "{err}");
        let second = String::from_utf8(resumed.stdout).unwrap();
        assert_eq!(support::joined(&first, &second), baseline(workers), "{workers:?}: {err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn resume_skips_a_damaged_checkpoint_and_refuses_another_runs() {
    let dir = scratch("damaged");
    let path = dir.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_exelixi"))
        .args(args(None, &["--gens", "12", "--checkpoint", path, "--checkpoint-every", "5"]))
        .output()
        .unwrap();
    assert!(out.status.success());
    let newest = dir.join("checkpoint-0000000010.exlx");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let resumed = Command::new(env!("CARGO_BIN_EXE_exelixi"))
        .args(args(None, &["--gens", "12", "--resume", path]))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains("warning:") && err.contains("checkpoint-0000000010.exlx skipped: truncated"), "{err}");
    assert!(err.contains("resuming from") && err.contains("(generation 5)"), "{err}");
    assert!(String::from_utf8_lossy(&resumed.stdout).starts_with("gen\t5\t"));

    let other = Command::new(env!("CARGO_BIN_EXE_exelixi"))
        .args(args(None, &["--gens", "12", "--resume", path, "--seed", "8"]))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(1), "{err}");
    assert!(err.contains("is of another run: seed 7 (this run: 8)"), "{err}");

    let empty = scratch("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let none = Command::new(env!("CARGO_BIN_EXE_exelixi"))
        .args(args(None, &["--resume", empty.to_str().unwrap()]))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(1), "{err}");
    assert!(err.contains("no usable checkpoint in"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn the_status_page_and_metrics_count_a_loss_and_its_recovery() {
    use support::browser::get;
    let _serial = serial();
    // A free port, named up front: the run prints its address only on stderr.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let run = watch(&args(Some("3"), &["--gens", "120", "--status", &addr]));
    run.at_generation(10);
    let (_, before) = get(&addr, "/metrics");
    assert!(before.contains("exelixi_worker_losses_total 0"), "{before}");
    let victim = hit_worker(&run, "-KILL");
    run.at_generation(30);
    let (_, metrics) = get(&addr, "/metrics");
    assert!(metrics.contains("exelixi_worker_losses_total 1\n"), "{metrics}");
    assert!(metrics.contains("exelixi_recoveries_total 1\n"), "{metrics}");
    let (_, status) = get(&addr, "/api/status");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let shard1 = &status["workers"][1];
    assert_eq!(shard1["losses"], 1, "{status}");
    // The row shows the replacement; the recovery names the worker lost.
    let now = shard1["worker"].as_str().unwrap();
    assert!(now.contains("still running") && !now.contains(&format!("pid {victim},")), "{status}");
    let recovery = status["recoveries"][0].as_str().unwrap();
    assert!(recovery.contains(&format!("lost the worker of shard 1 (pid {victim}")), "{recovery}");
    assert!(recovery.contains("killed by signal 9"), "{recovery}");
    let (status, _, err) = run.finish(Duration::from_secs(120));
    assert!(status.success(), "{err}");
    assert_no_workers_left();
}

#[test]
fn an_nsga2_run_that_loses_a_worker_prints_what_it_would_have() {
    let _serial = serial();
    let flags = ["--problem", "zdt1", "--pop", "2000", "--gens", "40", "--seed", "5"];
    let mut args: Vec<String> = ["run"].iter().chain(&flags).map(|s| s.to_string()).collect();
    let here = Command::new(env!("CARGO_BIN_EXE_exelixi")).args(&args).output().unwrap();
    assert!(here.status.success());
    args.extend(["--workers".to_string(), "3".to_string()]);
    let run = watch(&args);
    run.at_generation(10);
    let victim = hit_worker(&run, "-KILL");
    let (status, out, err) = run.finish(Duration::from_secs(120));
    assert!(status.success(), "{err}");
    assert_eq!(out, String::from_utf8(here.stdout).unwrap(), "{err}");
    assert!(err.contains(&format!("recovery 1 of 3: lost the worker of shard 1 (pid {victim}")), "{err}");
    assert!(err.contains("NSGA-II starts again from generation 0"), "{err}");
    assert_no_workers_left();
}
