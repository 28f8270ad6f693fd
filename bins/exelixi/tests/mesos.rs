//! `exelixi mesos` on the real Mesos 1.11 master that `tools/test` starts (MESOS_MASTER,
//! 3 agents; MESOS_AUTH_MASTER, 1 agent, HTTP authentication): real executors started by
//! real agents, real worker processes, the master's own `/master/state` as the witness.
//! A missing master fails these tests: they are never skipped.

mod support;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{exelixi, processes, signal, stderr_of, wait_with_deadline};

/// One run at a time on the shared master: each needs agents of its own.
static MASTER: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    MASTER.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with tools/test, which starts a real local Mesos"))
}

fn master() -> String {
    var("MESOS_MASTER")
}

/// A plain HTTP/1.0 GET on the master's port, as JSON.
fn get_json(host_port: &str, path: &str) -> Value {
    let mut stream = std::net::TcpStream::connect(host_port).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host_port}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {}", &body[..body.len().min(300)]))
}

/// The framework the run named on stderr ("mesos: framework ID on master …").
fn framework_id(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("mesos: framework ")?.split(' ').next())
        .unwrap_or_else(|| panic!("no framework id in {stderr}"))
        .to_string()
}

/// The framework in the master's state, active or completed.
fn framework(master: &str, id: &str) -> Value {
    let state = get_json(master, "/master/state");
    let all = state["frameworks"].as_array().unwrap().iter().chain(state["completed_frameworks"].as_array().unwrap());
    all.clone().find(|f| f["id"] == id).cloned().unwrap_or_else(|| panic!("framework {id} not in /master/state"))
}

fn tasks(f: &Value) -> Vec<Value> {
    f["tasks"].as_array().unwrap().iter().chain(f["completed_tasks"].as_array().unwrap()).cloned().collect()
}

/// Whether no executor or worker of ours runs, waiting up to `within` (an executor told to
/// shut down has the agent's grace period to end).
fn none_left(within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if processes("executor").is_empty() && processes("worker").is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn assert_none_left() {
    assert!(
        none_left(Duration::from_secs(20)),
        "left running: executors {:?}, workers {:?}",
        processes("executor"),
        processes("worker")
    );
}

#[test]
fn mesos_prints_what_run_workers_prints_through_executors_on_distinct_agents_and_leaves_nothing() {
    let _serial = lock();
    let master = master();
    for workers in ["2", "3"] {
        let mesos =
            exelixi(&["mesos", "--master", &master, "--workers", workers, "--cpu", "1", "--mem", "256", "--seed", "7"]);
        let stderr = String::from_utf8_lossy(&mesos.stderr).to_string();
        assert!(mesos.status.success(), "{stderr}");
        let local = exelixi(&["run", "--workers", workers, "--seed", "7"]);
        assert!(local.status.success());
        assert!(!mesos.stdout.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&mesos.stdout),
            String::from_utf8_lossy(&local.stdout),
            "--workers {workers}"
        );

        let f = framework(&master, &framework_id(&stderr));
        assert_eq!(f["active"], false, "the framework is torn down");
        let tasks = tasks(&f);
        let agents = |kind: &str| {
            let mut a: Vec<String> = tasks
                .iter()
                .filter(|t| t["name"].as_str().unwrap().contains(kind))
                .map(|t| t["slave_id"].as_str().unwrap().to_string())
                .collect();
            a.sort();
            a
        };
        let n: usize = workers.parse().unwrap();
        let (mut distinct, workers_on) = (agents("worker"), agents("worker"));
        distinct.dedup();
        assert_eq!(
            (workers_on.len(), distinct.len()),
            (n, n),
            "one executor on each of {n} distinct agents: {tasks:?}"
        );
        assert_eq!(agents("discovery"), workers_on, "a discovery task beside each worker");
        assert!(
            tasks
                .iter()
                .filter(|t| t["name"].as_str().unwrap().contains("discovery"))
                .all(|t| t["state"] == "TASK_FINISHED")
        );
        // Each discovery task's telemetry arrived, with the original's field names.
        let telemetry: Vec<Value> = stderr
            .lines()
            .filter_map(|l| l.split_once(": telemetry ").map(|(_, j)| serde_json::from_str(j).unwrap()))
            .collect();
        assert_eq!(telemetry.len(), n, "{stderr}");
        for t in telemetry {
            for field in ["ip_addr", "mem_free", "cpu_num", "cpu_times", "disk_usage", "disk_io", "network_io"] {
                assert!(t.get(field).is_some(), "{field} missing from {t}");
            }
            assert!(t["cpu_num"].as_u64().unwrap() >= 1 && t["network_io"]["bytes_recv"].is_u64(), "{t}");
        }
        assert_none_left();
    }
}

#[test]
fn islands_on_mesos_print_what_islands_over_local_workers_print() {
    let _serial = lock();
    let master = master();
    let flags = ["--workers", "3", "--problem", "rastrigin", "--size", "30", "--pop", "300", "--gens", "200"];
    let islands = [&flags[..], &["--migrate-every", "25", "--migrants", "2", "--seed", "4"]].concat();
    let mesos = exelixi(&[&["mesos", "--master", &master][..], &islands].concat());
    let stderr = String::from_utf8_lossy(&mesos.stderr).to_string();
    assert!(mesos.status.success(), "{stderr}");
    let local = exelixi(&[&["run"][..], &islands].concat());
    assert!(local.status.success(), "{}", String::from_utf8_lossy(&local.stderr));
    let text = String::from_utf8_lossy(&mesos.stdout);
    assert_eq!(text, String::from_utf8_lossy(&local.stdout));
    let gens: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("gen\t")?.split('\t').next()).collect();
    assert_eq!(gens, ["0", "25", "50", "75", "100", "125", "150", "175", "200"], "a line per migration");
    assert_none_left();
}

#[test]
fn more_workers_than_agents_end_with_a_clear_error_after_the_placement_timeout() {
    let _serial = lock();
    let started = Instant::now();
    let out = exelixi(&["mesos", "--master", &master(), "--workers", "4", "--placement-timeout", "5", "--seed", "7"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("3 of 4 workers serving after the placement timeout (5 s)"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(out.stdout.is_empty());
    let f = framework(&master(), &framework_id(&stderr));
    assert_eq!(f["active"], false);
    assert_none_left();
}

#[test]
fn an_authenticated_master_takes_the_credentials_from_the_environment_and_refuses_a_wrong_secret() {
    let _serial = lock();
    let auth_master = var("MESOS_AUTH_MASTER");
    let run = |secret: &str| {
        Command::new(env!("CARGO_BIN_EXE_exelixi"))
            .args(["mesos", "--master", &auth_master, "--workers", "1", "--seed", "7", "--placement-timeout", "60"])
            .env("MESOS_AUTHENTICATE", "1")
            .env("DEFAULT_PRINCIPAL", var("MESOS_AUTH_PRINCIPAL"))
            .env("DEFAULT_SECRET", secret)
            .output()
            .unwrap()
    };
    let frameworks = || {
        let state = get_json(&auth_master, "/master/state");
        state["frameworks"].as_array().unwrap().len() + state["completed_frameworks"].as_array().unwrap().len()
    };
    let before = frameworks();
    let good = run(&var("MESOS_AUTH_SECRET"));
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    assert_eq!(good.stdout, exelixi(&["run", "--workers", "1", "--seed", "7"]).stdout);
    let bad = run("not-the-secret");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused the credentials of principal"), "{stderr}");
    assert_eq!(frameworks(), before + 1, "only the good run registered a framework");
    // Without credentials at all: the same refusal.
    let none = exelixi(&["mesos", "--master", &auth_master, "--workers", "1"]);
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("without credentials"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    assert_none_left();
}

/// A run that lasts (a target it cannot reach), started and read until its first line.
fn start_long_mesos_run(workers: &str, flags: &[&str]) -> Child {
    support::spawn_past_first_line(
        Command::new(env!("CARGO_BIN_EXE_exelixi"))
            .args(["mesos", "--master", &master(), "--workers", workers, "--problem", "rastrigin", "--size", "30"])
            .args(flags)
            .args(["--max-indiv", "1000000000", "--target", "1", "--seed", "1"]),
    )
}

#[test]
fn an_executor_killed_during_the_run_ends_it_within_seconds_naming_shard_and_agent() {
    let _serial = lock();
    // Without recovery (tested below), the loss ends the run.
    let mut run = start_long_mesos_run("2", &["--max-recoveries", "0"]);
    let executors = processes("executor");
    assert_eq!(executors.len(), 2, "{executors:?}");
    let killed_at = Instant::now();
    signal(executors[1], "-KILL");
    let status = wait_with_deadline(&mut run, Duration::from_secs(60));
    let took = killed_at.elapsed();
    let stderr = stderr_of(&mut run);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    let line = stderr.lines().find(|l| l.contains("lost the worker of shard")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("on agent ") && line.contains("executor exelixi-"), "{line}");
    assert_none_left();
}

#[test]
fn ctrl_c_tears_the_framework_down_and_exits_130() {
    let _serial = lock();
    let mut run = start_long_mesos_run("2", &[]);
    signal(run.id(), "-INT");
    let status = wait_with_deadline(&mut run, Duration::from_secs(60));
    let stderr = stderr_of(&mut run);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(framework(&master(), &framework_id(&stderr))["active"], false, "torn down");
    assert_none_left();
}

#[test]
fn a_killed_framework_leaves_nothing_once_its_failover_timeout_has_passed() {
    let _serial = lock();
    let mut run = start_long_mesos_run("2", &["--failover-timeout", "3"]);
    assert_eq!(processes("worker").len(), 2);
    signal(run.id(), "-KILL");
    run.wait().unwrap();
    // The master keeps the executors for the failover timeout (3 s), then kills them.
    assert!(
        none_left(Duration::from_secs(60)),
        "executors {:?}, workers {:?}",
        processes("executor"),
        processes("worker")
    );
}

#[test]
fn an_executor_killed_before_its_worker_starts_is_replaced_from_a_new_offer() {
    let _serial = lock();
    // The first executor to appear is stopped at once and, unless its worker is up already
    // (the token goes out as soon as the executor reports STARTING: a race this test can
    // lose on a loaded machine, then it tears that run down and tries again), killed.
    for _ in 0..5 {
        let mut run = Command::new(env!("CARGO_BIN_EXE_exelixi"))
            .args(["mesos", "--master", &master(), "--workers", "2", "--seed", "7"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let victim = loop {
            if let Some(&pid) = processes("executor").first() {
                break pid;
            }
            assert!(Instant::now() < deadline, "no executor started");
            std::thread::sleep(Duration::from_millis(2));
        };
        if !support::try_signal(victim, "-STOP") || !support::children_of(victim).is_empty() {
            support::try_signal(victim, "-CONT");
            support::try_signal(run.id(), "-INT");
            wait_with_deadline(&mut run, Duration::from_secs(60));
            assert_none_left();
            continue;
        }
        signal(victim, "-KILL");
        let status = wait_with_deadline(&mut run, Duration::from_secs(120));
        let stderr = stderr_of(&mut run);
        let mut stdout = String::new();
        run.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        assert!(status.success(), "{stderr}");
        assert!(!stderr.contains("recovery"), "replaced while placing, before the run: {stderr}");
        assert_eq!(stdout.as_bytes(), exelixi(&["run", "--workers", "2", "--seed", "7"]).stdout);
        let f = framework(&master(), &framework_id(&stderr));
        let workers = tasks(&f).into_iter().filter(|t| t["name"].as_str().unwrap().contains("worker")).count();
        assert_eq!(workers, 3, "two workers, one of them placed twice");
        assert_none_left();
        return;
    }
    panic!("in 5 runs, the first executor's worker was always up before it could be stopped");
}

/// `exelixi mesos --workers 2` on [`support::FORTY_GENERATIONS`], the process `pick` names SIGKILLed once
/// generation `at` is printed: the output must be `run --workers 2`'s, and a new executor
/// must come from a new offer.
fn recovers_on_mesos(at: u32, pick: impl FnOnce() -> u32) {
    let expected = exelixi(&[&["run", "--workers", "2"][..], support::FORTY_GENERATIONS].concat());
    assert!(expected.status.success());
    let master = master();
    let mut args: Vec<String> =
        ["mesos", "--master", &master, "--cpu", "0.5", "--workers", "2"].map(String::from).into();
    args.extend(support::FORTY_GENERATIONS.iter().map(|s| s.to_string()));
    let run = support::watch(&args);
    run.at_generation(at);
    let victim = run.hit("-KILL", pick);
    let (status, out, err) = run.finish(Duration::from_secs(180));
    assert!(status.success(), "{err}");
    assert_eq!(out.as_bytes(), expected.stdout, "{err}");
    assert!(err.contains("recovery 1 of 3: lost the worker of shard") && err.contains("on agent"), "{err}");
    let f = framework(&master, &framework_id(&err));
    let workers: Vec<Value> =
        tasks(&f).into_iter().filter(|t| t["name"].as_str().unwrap().contains("worker")).collect();
    assert_eq!(workers.len(), 3, "two workers, one of them placed again (pid {victim} killed): {workers:?}");
    let executors: std::collections::BTreeSet<&str> =
        workers.iter().map(|t| t["executor_id"].as_str().unwrap()).collect();
    assert_eq!(executors.len(), 3, "the replacement has an executor of its own");
    assert_none_left();
}

#[test]
fn an_executor_killed_mid_run_is_replaced_from_a_new_offer_and_the_output_is_unchanged() {
    let _serial = lock();
    recovers_on_mesos(12, || one_of_two("executor", 1));
}

/// The `i`th of the two processes of `kind` (executors or workers) a run has.
fn one_of_two(kind: &str, i: usize) -> u32 {
    let found = processes(kind);
    assert_eq!(found.len(), 2, "{kind}: {found:?}");
    found[i]
}

#[test]
fn a_worker_killed_under_its_executor_is_replaced_the_same_way() {
    let _serial = lock();
    recovers_on_mesos(25, || one_of_two("worker", 0));
}

#[test]
fn a_killed_framework_is_resumed_on_mesos_from_its_checkpoint() {
    let _serial = lock();
    let dir = std::env::temp_dir().join(format!("exelixi-mesos-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.to_str().unwrap();
    let mesos = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> =
            ["mesos", "--master", &master(), "--cpu", "0.5", "--workers", "2", "--failover-timeout", "3"]
                .map(String::from)
                .into();
        args.extend(support::FORTY_GENERATIONS.iter().chain(extra).map(|s| s.to_string()));
        args
    };
    let run = support::watch(&mesos(&["--checkpoint", path, "--checkpoint-every", "4"]));
    run.at_generation(22);
    signal(run.child.id(), "-KILL");
    let (_, first, _) = run.finish(Duration::from_secs(30));
    // The master keeps the executors for the failover timeout (3 s), then kills them.
    assert!(none_left(Duration::from_secs(60)), "executors {:?}", processes("executor"));
    let resumed = Command::new(env!("CARGO_BIN_EXE_exelixi")).args(mesos(&["--resume", path])).output().unwrap();
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains("resuming from"), "{err}");
    let second = String::from_utf8(resumed.stdout).unwrap();
    let expected = exelixi(&[&["run", "--workers", "2"][..], support::FORTY_GENERATIONS].concat());
    assert_eq!(support::joined(&first, &second).as_bytes(), expected.stdout, "{err}");
    assert_none_left();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every file under `dir`, recursively (symbolic links not followed).
fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            files_under(&e.path(), out);
        } else if kind.is_file() {
            out.push(e.path());
        }
    }
}

#[test]
fn the_runs_secret_appears_in_no_state_id_label_environment_or_sandbox_file() {
    let _serial = lock();
    let master = master();
    let mut run = start_long_mesos_run("2", &[]);
    // The token as the workers hold it (their environment is theirs, not Mesos'); the
    // executors got it in a MESSAGE.
    let worker = processes("worker")[0];
    let environ = std::fs::read(format!("/proc/{worker}/environ")).unwrap();
    let token = environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(b"EXELIXI_TOKEN="))
        .map(|t| String::from_utf8(t.to_vec()).unwrap())
        .expect("the worker's token");
    assert!(token.len() >= 32, "{token}");
    // Looked at while the run lasts (tasks and executors are live) and after it.
    let port = master.rsplit_once(':').unwrap().1.to_string();
    let mut seen = vec![("/master/state".to_string(), get_json(&master, "/master/state").to_string())];
    for agent in 1..=3 {
        let path = format!("/slave({agent})/state");
        seen.push((path.clone(), get_json(&master, &path).to_string()));
    }
    signal(run.id(), "-INT");
    assert_eq!(wait_with_deadline(&mut run, Duration::from_secs(60)).code(), Some(130));
    let stderr = stderr_of(&mut run);
    seen.push(("/master/state (after)".into(), get_json(&master, "/master/state").to_string()));
    seen.push(("the framework's stderr".into(), stderr.clone()));
    let id = framework_id(&stderr);
    let name = framework(&master, &id)["name"].as_str().unwrap().to_string();
    let run_id = name.trim_start_matches("Exelixi ");
    assert!(!run_id.is_empty() && !token.contains(run_id), "the run id {run_id:?} is not part of the token");
    // Every file of the run's sandboxes (stdout, stderr of executors and workers), which the
    // agents serve over /files.
    let home = std::env::var("MESOS_LOCAL_HOME")
        .unwrap_or_else(|_| format!("{}/.cache/mesos-local", std::env::var("HOME").unwrap()));
    let env = std::fs::read_to_string(format!("{home}/clusters/{port}/env")).unwrap();
    let work = env.lines().find_map(|l| l.strip_prefix("MESOS_LOCAL_WORK_DIR=")).unwrap().trim_matches('"').to_string();
    let mut files = Vec::new();
    files_under(std::path::Path::new(&work), &mut files);
    let ours: Vec<_> = files.into_iter().filter(|f| f.to_string_lossy().contains(&id)).collect();
    assert!(ours.iter().any(|f| f.ends_with("stderr")), "the sandboxes of {id} under {work}");
    // tools/mesos-local's agents leave the sandbox's stdout and stderr files empty and send
    // the executors' output to the cluster's log: read that too.
    let log = env.lines().find_map(|l| l.strip_prefix("MESOS_LOCAL_LOG=")).unwrap().trim_matches('"').to_string();
    for f in ours.iter().chain([&std::path::PathBuf::from(log)]) {
        seen.push((
            f.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned(),
        ));
    }
    for (where_, text) in &seen {
        assert!(!text.contains(&token), "the token is in {where_}");
    }
    assert!(seen.len() > 6);
    assert_none_left();
}

/// The value of `name` in the environment of `pid`.
fn environment_of(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[test]
fn the_event_loop_handles_the_masters_events_while_a_generation_outlasts_the_heartbeat() {
    let _serial = lock();
    let mut run = start_long_mesos_run("2", &["--phase-timeout", "600", "--max-recoveries", "0"]);
    let executors = processes("executor");
    assert_eq!(executors.len(), 2);
    let (victim, other) = (executors[0], executors[1]);
    let stalled = support::children_of(other)[0];
    // One worker stopped: the generation under way waits on it beyond the master's 15 s
    // heartbeat interval, and short of the worker clients' keepalive (a stopped worker's
    // unanswered pings end the run 20 to 25 s after it stopped, naming it instead).
    signal(stalled, "-STOP");
    std::thread::sleep(Duration::from_secs(17));
    assert!(run.try_wait().unwrap().is_none(), "the run waits on the stopped worker");
    // The other executor is killed. The GA thread is stuck in the phase (the barrier waits
    // for the stopped worker, 600 s); only the event loop, reading the master's update and
    // acknowledging it, can end the run now.
    let lost_shard = environment_of(victim, "MESOS_EXECUTOR_ID").unwrap().split('-').nth(2).unwrap().to_string();
    let killed_at = Instant::now();
    signal(victim, "-KILL");
    let status = wait_with_deadline(&mut run, Duration::from_secs(120));
    let took = killed_at.elapsed();
    // (It may be gone already: the executors were shut down.)
    support::try_signal(stalled, "-CONT");
    let stderr = stderr_of(&mut run);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(30), "{took:?}: {stderr}");
    // The killed executor's shard, not the stopped one (which keepalive would name).
    assert!(stderr.contains(&format!("lost the worker of shard {lost_shard} (executor exelixi-")), "{stderr}");
    let f = framework(&master(), &framework_id(&stderr));
    assert!(f.get("reregistered_time").is_none(), "the subscription was renewed: {f}");
    assert_none_left();
}

#[test]
fn nodes_lists_the_agents_and_their_resources() {
    let out = exelixi(&["nodes", "--master", &master()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "agent\thostname\tactive\tused_cpus\tused_mem\tresources");
    assert_eq!(lines.len(), 4, "three agents: {text}");
    for l in &lines[1..] {
        assert!(l.contains("\t127.0.0.1\ttrue\t") && l.contains("cpus:2") && l.contains("ports:[31000-31999]"), "{l}");
    }
}

#[test]
fn the_status_page_of_a_mesos_run_shows_both_agents_and_their_telemetry() {
    use std::io::BufRead;
    use support::browser::{dump_dom, get, text_of};
    let _serial = lock();
    let mut run = start_long_mesos_run("2", &["--status", "127.0.0.1:0", "--gens", "100000000", "--pop", "5000"]);
    // The address is on stderr before the first generation.
    let addr = {
        let mut stderr = std::io::BufReader::new(run.stderr.as_mut().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "stderr ended before the status address");
            if let Some(rest) = line.trim().strip_prefix("exelixi: status page at http://") {
                break rest.trim_end_matches('/').to_string();
            }
        }
    };
    let profile = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-mesos-chromium");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = dump_dom(&profile, &format!("http://{addr}/"), Duration::ZERO);
    let id = text_of(&dom, "framework-id").to_string();
    assert!(id.len() > 10, "the framework id: {id:?}");
    let agents: Vec<&str> = dom.split(r#"<tr class="agent">"#).skip(1).collect();
    assert_eq!(agents.len(), 2, "both agents listed: {dom}");
    for row in &agents {
        let telemetry = row.split(r#"<code class="telemetry">"#).nth(1).unwrap().split("</code>").next().unwrap();
        let telemetry: Value = serde_json::from_str(&telemetry.replace("&quot;", "\"").replace("&amp;", "&"))
            .unwrap_or_else(|e| panic!("telemetry as JSON: {e}: {telemetry}"));
        assert!(telemetry["cpu_num"].as_u64().is_some_and(|n| n > 0), "{telemetry}");
        assert!(telemetry["mem_free"].as_u64().is_some(), "{telemetry}");
        assert!(row.contains("TASK_RUNNING"), "{row}");
    }
    // The master agrees on the framework and its agents.
    let f = framework(&master(), &id);
    let agents_of_master: std::collections::BTreeSet<String> =
        tasks(&f).iter().map(|t| t["slave_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(agents_of_master.len(), 2, "{agents_of_master:?}");
    for agent in &agents_of_master {
        assert!(dom.contains(agent.as_str()), "agent {agent} not on the page");
    }
    let (_, metrics) = get(&addr, "/metrics");
    assert!(metrics.contains(r#"exelixi_mesos_offers_total{decision="accepted"} 2"#), "{metrics}");
    signal(run.id(), "-INT");
    let status = wait_with_deadline(&mut run, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "{}", stderr_of(&mut run));
    assert_none_left();
}

#[test]
fn nsga2_on_mesos_prints_what_the_run_in_process_prints() {
    let _serial = lock();
    let flags = ["--problem", "zdt1", "--gens", "25", "--size", "12", "--seed", "3"];
    let here = exelixi(&[&["run"][..], &flags].concat());
    assert!(here.status.success());
    let on_mesos = exelixi(&[&["mesos", "--master", &master(), "--workers", "2"][..], &flags].concat());
    let err = String::from_utf8_lossy(&on_mesos.stderr).to_string();
    assert!(on_mesos.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&on_mesos.stdout), String::from_utf8_lossy(&here.stdout), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("mesos: shard ")).count(), 2, "{err}");
    assert_none_left();
}
