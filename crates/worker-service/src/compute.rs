//! Where a worker's computing threads stand against its network threads.
//!
//! A worker computes (breeds, evaluates, admits) on blocking threads while its async
//! runtime answers the framework and its peers. On a machine whose cores all compute, a
//! message that wakes the runtime waits for a core: Linux's scheduler (EEVDF, 6.6 on) lets
//! a running thread finish its slice before a woken thread of the same class takes the
//! core, so every hop of a step (an answer sent, a request read, a peer's batch taken in)
//! can wait milliseconds. Computing threads of the `SCHED_IDLE` class are preempted at
//! once by any other thread (Linux's kernel/sched/fair.c, `check_preempt_wakeup_fair`: a
//! woken non-idle entity always preempts an idle one), so the runtime's and the framework's work goes
//! first and the computing resumes as soon as they are done. The price: an idle-class
//! thread gets a core only when no ordinary thread wants it (among the threads its cgroup
//! holds, under Mesos), so a worker on a machine busy with other work computes slower.
//! See docs/PERFORMANCE.md for the figures.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a worker's computing threads are scheduled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ComputeClass {
    /// Like every other thread (the default of [`crate::WorkerConfig`]).
    #[default]
    Normal,
    /// Linux's `SCHED_IDLE`: preempted at once by the worker's network threads and any
    /// other process's (elsewhere than Linux, as [`ComputeClass::Normal`]).
    Idle,
}

impl std::str::FromStr for ComputeClass {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "normal" => Ok(ComputeClass::Normal),
            "idle" => Ok(ComputeClass::Idle),
            other => Err(format!("{other:?}: expected idle or normal")),
        }
    }
}

impl std::fmt::Display for ComputeClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ComputeClass::Normal => "normal",
            ComputeClass::Idle => "idle",
        })
    }
}

thread_local! {
    /// Whether this thread was put in the idle class already.
    static IDLE: Cell<bool> = const { Cell::new(false) };
}

/// Said once per process when the class cannot be set.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Puts the calling thread in `class` before it computes: a thread put in the idle class
/// stays there (threads it starts inherit it, e.g. a job's fitness pool built on it).
/// [`ComputeClass::Normal`] changes nothing. A refusal (a sandbox forbidding the call) is
/// logged once and the thread computes as it is.
pub(crate) fn enter(class: ComputeClass) {
    if class == ComputeClass::Normal || IDLE.with(Cell::get) {
        return;
    }
    match set_idle() {
        Ok(()) => IDLE.with(|i| i.set(true)),
        Err(e) => {
            IDLE.with(|i| i.set(true)); // not tried again on this thread
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!("cannot put computing threads in the idle scheduling class: {e}");
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn set_idle() -> Result<(), String> {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle).map_err(|e| format!("{e:?}"))
}

#[cfg(not(target_os = "linux"))]
fn set_idle() -> Result<(), String> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy};

    #[test]
    fn an_idle_class_thread_is_sched_idle_and_so_are_the_threads_it_starts() {
        let normal = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        let policies = std::thread::spawn(move || {
            enter(ComputeClass::Normal);
            let before = thread_schedule_policy().unwrap();
            enter(ComputeClass::Idle);
            let after = thread_schedule_policy().unwrap();
            let child = std::thread::spawn(|| thread_schedule_policy().unwrap()).join().unwrap();
            (before, after, child)
        })
        .join()
        .unwrap();
        assert_eq!(policies, (normal, idle, idle));
        // This thread was never entered: still normal.
        assert_eq!(thread_schedule_policy().unwrap(), normal);
    }

    #[test]
    fn classes_parse_and_print() {
        for class in [ComputeClass::Normal, ComputeClass::Idle] {
            assert_eq!(class.to_string().parse::<ComputeClass>(), Ok(class));
        }
        assert!("fast".parse::<ComputeClass>().unwrap_err().contains("expected idle or normal"));
    }
}
