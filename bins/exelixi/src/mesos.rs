//! `exelixi mesos`, `exelixi nodes` and the hidden `exelixi executor`: flags to the
//! `scheduler` and `executor` crates.

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

use mesos_client::executor::{ExecutorClient, ExecutorConfig};
use mesos_client::scheduler::Credential;
use scheduler::{MesosSettings, MesosWorkers};

use worker_service::ComputeClass;

use crate::cli::{ExecutorArgs, MesosConfig, NodesArgs};

/// The workers of an `exelixi mesos` run.
pub fn workers(m: &MesosConfig, credential: Option<Credential>, class: ComputeClass) -> MesosWorkers {
    let run_id = worker_service::generate_token().map_or_else(|_| "run".to_string(), |t| t[..8].to_string());
    MesosWorkers::new(MesosSettings {
        master: m.master.clone(),
        credential,
        failover_timeout: m.failover_timeout,
        placement_timeout: m.placement_timeout,
        reconcile_every: Duration::from_secs(60),
        placement: scheduler::Config {
            workers: 0,
            cpus: m.cpus,
            mem: m.mem,
            ports: 4,
            executor: m.executor.clone(),
            executor_args: vec!["executor".into(), "--compute-class".into(), class.to_string()],
            refuse_seconds: 30.0,
            run_id,
        },
    })
}

/// `exelixi executor`: what the agents run.
pub fn executor(args: &ExecutorArgs) -> ExitCode {
    let class = args.compute_class.to_string();
    let run = || -> Result<(), String> {
        let config = ExecutorConfig::from_env().map_err(|e| e.to_string())?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let settings = executor::Settings::new(move |port| {
            let mut worker = Command::new(&exe);
            worker.args(["worker", "--host", "0.0.0.0", "--port", &port.to_string(), "--exit-with-parent"]);
            worker.args(["--compute-class", &class]);
            worker
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let mut client = ExecutorClient::new(config);
        let result = runtime.block_on(executor::run(&mut client, Arc::new(settings)));
        runtime.shutdown_timeout(Duration::from_millis(500));
        result.map_err(|e| e.to_string())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("exelixi executor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `exelixi nodes`: the agents, as the original's `-n` listed them.
pub fn nodes(args: &NodesArgs) -> ExitCode {
    let run = || -> Result<(), String> {
        let credential = Credential::from_env().map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let agents = runtime
            .block_on(mesos_client::operator::agents(&args.master, credential.as_ref()))
            .map_err(|e| e.to_string())?;
        println!("agent\thostname\tactive\tused_cpus\tused_mem\tresources");
        for a in agents {
            println!("{}\t{}\t{}\t{}\t{}\t{}", a.id, a.hostname, a.active, a.used_cpus, a.used_mem, a.resources);
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
