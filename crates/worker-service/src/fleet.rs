//! The parent side of [`serve_process`](crate::serve_process): worker processes started on
//! this machine, their endpoints learnt from their first line of output, named when they
//! are lost, and never left behind (dropping the fleet kills and reaps them; the workers
//! also exit when the fleet's end of their stdin closes, even if the parent is killed).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The environment variable from which a worker process reads the run's token.
pub const TOKEN_ENV: &str = "EXELIXI_TOKEN";

/// The environment variable through which glibc's `malloc` takes its settings.
pub const MALLOC_TUNABLES_ENV: &str = "GLIBC_TUNABLES";

/// The `malloc` settings a fleet starts its workers with (glibc; other C libraries ignore
/// them), unless the worker's command or the parent's environment sets
/// [`MALLOC_TUNABLES_ENV`] itself: each of its heaps keeps 16 MiB of freed memory at its top
/// instead of handing it back to the system at once.
///
/// A worker allocates and frees its step's deliveries and children each generation; with
/// genomes of tens of kilobytes these are megabytes. glibc gives freed memory back to the
/// system once more than about twice the largest recent allocation is free at a heap's
/// top, so every generation the pages came back as fresh page faults, each zeroed by the
/// kernel: 65 000 to 80 000 faults in a 200-generation Rastrigin-4000 run over 2 workers,
/// 14 000 with this setting, and the workers' throughput 17% higher (`docs/PERFORMANCE.md`,
/// "Workers keep their freed memory"). A worker's resident memory then stays near its
/// peak plus 16 MiB a heap, as a long-running service's does.
pub const WORKER_MALLOC_TUNABLES: &str = "glibc.malloc.top_pad=16777216";

/// How long a worker may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a fleet could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The process could not be started.
    #[error("cannot start worker {shard}: {reason}")]
    Spawn {
        /// Its shard.
        shard: u32,
        /// What failed.
        reason: String,
    },
    /// The process started but did not announce where it listens.
    #[error("worker {shard} (pid {pid}) did not start: {reason}")]
    NoStart {
        /// Its shard.
        shard: u32,
        /// Its process id.
        pid: u32,
        /// What happened instead.
        reason: String,
    },
}

struct Member {
    child: Child,
    endpoint: String,
}

/// Worker processes, one per shard. Dropping the fleet kills and reaps whatever is left.
pub struct Fleet {
    members: Arc<Mutex<Vec<Member>>>,
}

fn lock(m: &Mutex<Vec<Member>>) -> std::sync::MutexGuard<'_, Vec<Member>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Fleet {
    /// Starts `n` workers, shard `i` from `command(i)`: a program that runs
    /// [`serve_process`](crate::serve_process) with `exit_with_parent`. The fleet gives
    /// each the token in [`TOKEN_ENV`] and [`WORKER_MALLOC_TUNABLES`] (unless set already),
    /// holds its stdin and reads its stdout; stderr is inherited.
    pub fn start(n: u32, token: &str, command: impl Fn(u32) -> Command) -> Result<Self, FleetError> {
        let fleet = Fleet { members: Arc::new(Mutex::new(Vec::new())) };
        // Every process is started before any is waited for: they start side by side.
        let mut starting = Vec::with_capacity(n as usize);
        for shard in 0..n {
            starting.push(fleet.spawn(shard, token, &command)?);
        }
        for (shard, (pid, stdout)) in (0..n).zip(starting) {
            fleet.await_endpoint(shard, pid, stdout)?;
        }
        Ok(fleet)
    }

    /// Replaces the worker of `shard` (e.g. after it was lost): the old process is killed
    /// if it still runs (a hung one too) and reaped, a new one started from `command` as
    /// in [`Fleet::start`]; returns its endpoint.
    pub fn replace(&self, shard: u32, token: &str, command: impl Fn(u32) -> Command) -> Result<String, FleetError> {
        let count = lock(&self.members).len() as u32;
        if shard >= count {
            return Err(FleetError::Spawn { shard, reason: format!("the fleet has {count} workers") });
        }
        self.launch(shard, token, &command)
    }

    /// Starts the worker of `shard` in its slot (a new one at the end, or in place of the
    /// old one, killed first), and waits for its endpoint.
    fn launch(&self, shard: u32, token: &str, command: &dyn Fn(u32) -> Command) -> Result<String, FleetError> {
        let (pid, stdout) = self.spawn(shard, token, command)?;
        self.await_endpoint(shard, pid, stdout)
    }

    /// Starts the worker of `shard` in its slot (a new one at the end, or in place of the
    /// old one, killed first); its pid and stdout.
    fn spawn(
        &self,
        shard: u32,
        token: &str,
        command: &dyn Fn(u32) -> Command,
    ) -> Result<(u32, Option<std::process::ChildStdout>), FleetError> {
        let mut command = command(shard);
        let tuned = command.get_envs().any(|(k, _)| k == MALLOC_TUNABLES_ENV)
            || std::env::var_os(MALLOC_TUNABLES_ENV).is_some();
        if !tuned {
            command.env(MALLOC_TUNABLES_ENV, WORKER_MALLOC_TUNABLES);
        }
        let mut child = command
            .env(TOKEN_ENV, token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| FleetError::Spawn { shard, reason: e.to_string() })?;
        let pid = child.id();
        let stdout = child.stdout.take();
        // Registered before waiting for it, so that a failure below still kills it.
        let member = Member { child, endpoint: String::new() };
        let mut members = lock(&self.members);
        match members.get_mut(shard as usize) {
            Some(old) => {
                let mut old = std::mem::replace(old, member);
                if matches!(old.child.try_wait(), Ok(None)) {
                    let _ = old.child.kill();
                }
                let _ = old.child.wait();
            }
            None => members.push(member),
        }
        Ok((pid, stdout))
    }

    /// Reads the endpoint the worker of `shard` announces on `stdout`, and records it.
    fn await_endpoint(
        &self,
        shard: u32,
        pid: u32,
        stdout: Option<std::process::ChildStdout>,
    ) -> Result<String, FleetError> {
        let Some(stdout) = stdout else {
            return Err(FleetError::NoStart { shard, pid, reason: "its stdout was not captured".into() });
        };
        let endpoint = read_endpoint(stdout).map_err(|reason| FleetError::NoStart { shard, pid, reason })?;
        lock(&self.members)[shard as usize].endpoint.clone_from(&endpoint);
        Ok(endpoint)
    }

    /// The workers' endpoints, in shard order.
    pub fn endpoints(&self) -> Vec<String> {
        lock(&self.members).iter().map(|m| m.endpoint.clone()).collect()
    }

    /// A handle that can kill every worker from another thread (e.g. on Ctrl-C).
    pub fn killer(&self) -> Killer {
        Killer { members: self.members.clone() }
    }

    /// Workers that have exited, described for the user ("shard 1 (pid 4242,
    /// http://127.0.0.1:40123) was killed by signal 9").
    pub fn lost(&self) -> Vec<String> {
        // A worker killed mid-call may take a moment to be reported as exited.
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            let mut members = lock(&self.members);
            let lost: Vec<String> = members
                .iter_mut()
                .enumerate()
                .filter_map(|(shard, m)| {
                    let status = m.child.try_wait().ok().flatten()?;
                    Some(format!("shard {shard} (pid {}, {}) {}", m.child.id(), m.endpoint, describe(status)))
                })
                .collect();
            drop(members);
            if !lost.is_empty() || Instant::now() >= deadline {
                return lost;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The worker of `shard` described for the user: "pid 4242, http://127.0.0.1:40123,
    /// was killed by signal 9" (a worker killed mid-call may take a moment to be reported
    /// as exited: this waits up to 500 ms for it), or "…, still running".
    pub fn describe(&self, shard: u32) -> String {
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            let mut members = lock(&self.members);
            let Some(m) = members.get_mut(shard as usize) else {
                return format!("no worker for shard {shard}");
            };
            let (pid, endpoint) = (m.child.id(), m.endpoint.clone());
            match m.child.try_wait() {
                Ok(Some(status)) => return format!("pid {pid}, {endpoint}, {}", describe(status)),
                _ if Instant::now() >= deadline => return format!("pid {pid}, {endpoint}, still running"),
                _ => {}
            }
            drop(members);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How the worker of `shard` ended, if it has (without waiting).
    pub fn exit_status(&self, shard: u32) -> Option<String> {
        let mut members = lock(&self.members);
        let status = members.get_mut(shard as usize)?.child.try_wait().ok().flatten()?;
        Some(describe(status))
    }

    /// The process id of the worker of `shard`.
    pub fn pid(&self, shard: u32) -> Option<u32> {
        lock(&self.members).get(shard as usize).map(|m| m.child.id())
    }

    /// Waits up to `grace` for every worker to exit by itself, then kills the rest.
    pub fn finish(self, grace: Duration) {
        let deadline = Instant::now() + grace;
        // Workers told to stop exit within a few milliseconds: looked at often at first
        // (a run's end waits for this), then less.
        let mut pause = Duration::from_micros(250);
        while Instant::now() < deadline {
            let running = lock(&self.members).iter_mut().any(|m| matches!(m.child.try_wait(), Ok(None)));
            if !running {
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        // Drop kills and reaps what is left.
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.killer().kill_all();
    }
}

/// Kills and reaps every worker of a fleet.
#[derive(Clone)]
pub struct Killer {
    members: Arc<Mutex<Vec<Member>>>,
}

impl Killer {
    /// Kills every worker still running, and reaps them all.
    pub fn kill_all(&self) {
        for m in lock(&self.members).iter_mut() {
            if matches!(m.child.try_wait(), Ok(None)) {
                let _ = m.child.kill();
            }
            let _ = m.child.wait();
        }
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "exited".to_string(),
    }
}

/// Reads the worker's `listening http://HOST:PORT` line, with a time limit.
fn read_endpoint(stdout: std::process::ChildStdout) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let result = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = tx.send(result);
    });
    let line = rx
        .recv_timeout(START_TIMEOUT)
        .map_err(|_| format!("no address within {} s", START_TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot read its output: {e}"))?;
    line.trim().strip_prefix("listening ").map(str::to_string).ok_or_else(|| {
        if line.is_empty() { "it exited before listening".to_string() } else { format!("unexpected output {line:?}") }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `name` in the environment a running process started with.
    fn environment_of(pid: u32, name: &str) -> Option<String> {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("the worker's environment is readable");
        environ.split(|b| *b == 0).find_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            entry.strip_prefix(name)?.strip_prefix('=').map(str::to_string)
        })
    }

    #[test]
    fn workers_start_with_the_malloc_settings_unless_their_command_or_the_parent_sets_them() {
        // A stand-in worker: announces an endpoint and lives until its stdin closes. No
        // `exec` after the announcement: a process caught in the middle of exec can show an
        // empty /proc/PID/environ (this test failed so once in CI).
        let script = "echo listening http://127.0.0.1:1; cat >/dev/null";
        let fleet = Fleet::start(2, "token", |shard| {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            if shard == 1 {
                c.env(MALLOC_TUNABLES_ENV, "glibc.malloc.top_pad=0");
            }
            c
        })
        .unwrap();
        let expected = std::env::var(MALLOC_TUNABLES_ENV).unwrap_or_else(|_| WORKER_MALLOC_TUNABLES.to_string());
        assert_eq!(environment_of(fleet.pid(0).unwrap(), MALLOC_TUNABLES_ENV), Some(expected));
        assert_eq!(
            environment_of(fleet.pid(1).unwrap(), MALLOC_TUNABLES_ENV).as_deref(),
            Some("glibc.malloc.top_pad=0")
        );
        assert_eq!(environment_of(fleet.pid(0).unwrap(), TOKEN_ENV).as_deref(), Some("token"));
    }
}
