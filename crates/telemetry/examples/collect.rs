//! Prints this machine's telemetry as JSON: `cargo run -p telemetry --example collect`.

fn main() {
    println!("{}", telemetry::Telemetry::collect().to_json());
}
