//! A small executor built from `mesos-client`'s executor side, for the conformance tests:
//! on LAUNCH it reports TASK_RUNNING; once the agent ACKNOWLEDGED that update it sends the
//! scheduler a MESSAGE ("hello"); when the scheduler's MESSAGE arrives it finishes the task
//! with `got:<message>` as data; it exits with status 0 once every update was acknowledged,
//! on SHUTDOWN, or when the agent closes the stream — so a clean exit (the scheduler's
//! FAILURE event with status 0) shows the acknowledgements arrived.
//! It speaks JSON when its environment has `EXELIXI_TEST_CONTENT_TYPE=json`, else protobuf;
//! with `EXELIXI_TEST_AGENT_VIA=host:port` it reaches its agent through that address (the
//! fault tests' proxy) instead of the agent's own, keeping the path from `MESOS_SLAVE_PID`.

use std::process::ExitCode;

use mesos_client::codec::ContentType;
use mesos_client::executor::{ExecutorApi, ExecutorClient, ExecutorConfig, is};
use mesos_client::v1::executor::event;
use mesos_client::v1::{TaskId, TaskState, TaskStatus};

fn status(task: &TaskId, state: TaskState, data: Option<Vec<u8>>) -> TaskStatus {
    TaskStatus { task_id: task.clone(), state: state as i32, data, ..Default::default() }
}

async fn run() -> Result<(), String> {
    let mut config = ExecutorConfig::from_env().map_err(|e| e.to_string())?;
    if let Ok(via) = std::env::var("EXELIXI_TEST_AGENT_VIA") {
        let path = config.agent_url.trim_start_matches("http://").split_once('/').map(|(_, p)| p.to_string());
        config.agent_url = format!("http://{via}/{}", path.unwrap_or_default());
    }
    let content_type = match std::env::var("EXELIXI_TEST_CONTENT_TYPE").as_deref() {
        Ok("json") => ContentType::Json,
        _ => ContentType::Protobuf,
    };
    let mut client = ExecutorClient::new(config).with_content_type(content_type);
    eprintln!("mesos-test-executor: subscribing at {} ({content_type})", client.config().agent_url);
    let mut task: Option<TaskId> = None;
    let mut finished = false;
    let mut greeted = false;
    while let Some(e) = client.next_event().await {
        let e = e.map_err(|e| e.to_string())?;
        // The agent's log (mesos.log with mesos-local) is the place to read what an executor saw.
        eprintln!("mesos-test-executor: event {:?}", e.r#type.and_then(|t| event::Type::try_from(t).ok()));
        if let Some(launch) = &e.launch {
            let id = launch.task.task_id.clone();
            client.update(status(&id, TaskState::TaskRunning, None)).await.map_err(|e| e.to_string())?;
            task = Some(id);
        } else if e.acknowledged.is_some() && !greeted && !finished {
            client.message(b"hello".to_vec()).await.map_err(|e| e.to_string())?;
            greeted = true;
        } else if let (Some(m), Some(id)) = (&e.message, &task) {
            let mut data = b"got:".to_vec();
            data.extend_from_slice(&m.data);
            client.update(status(id, TaskState::TaskFinished, Some(data))).await.map_err(|e| e.to_string())?;
            finished = true;
        } else if let Some(kill) = &e.kill {
            client.update(status(&kill.task_id, TaskState::TaskKilled, None)).await.map_err(|e| e.to_string())?;
            finished = true;
        } else if is(&e, event::Type::Shutdown) {
            return Ok(());
        }
        if finished && client.unacknowledged_updates() == 0 {
            return Ok(());
        }
    }
    eprintln!("mesos-test-executor: the agent closed the stream");
    Ok(())
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mesos-test-executor: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesos-test-executor: {e}");
            ExitCode::FAILURE
        }
    }
}
