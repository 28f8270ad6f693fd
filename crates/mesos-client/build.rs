//! Compiles `proto/mesos/v1/**.proto` with protox (pure Rust, no `protoc`) and prost, and
//! keeps the encoded descriptor set for the JSON content type (`src/codec.rs`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["mesos/v1/mesos.proto", "mesos/v1/scheduler/scheduler.proto", "mesos/v1/executor/executor.proto"]
        .map(|f| root.join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true).open_files(&files)?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("mesos_v1.fds"), compiler.encode_file_descriptor_set())?;
    prost_build::Config::new().compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
