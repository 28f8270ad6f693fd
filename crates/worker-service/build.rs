//! Compiles `proto/exelixi/worker/v1/worker.proto` with protox (pure Rust, no `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = root.join("exelixi/worker/v1/worker.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], [&root])?;
    // Payloads as `Bytes`: a received message's bytes are sliced out of the read buffer,
    // not copied again (an admit answer carrying a snapshot is tens of kilobytes).
    tonic_prost_build::configure().build_client(true).build_server(true).bytes(".").compile_fds(fds)?;
    Ok(())
}
