//! Compiles `proto/mesos/v1/**.proto` with protox (pure Rust, no `protoc`) and prost.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["mesos/v1/mesos.proto", "mesos/v1/scheduler/scheduler.proto", "mesos/v1/executor/executor.proto"]
        .map(|f| root.join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
