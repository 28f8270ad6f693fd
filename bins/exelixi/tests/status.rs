//! The live status page and its metrics, watched during a real `exelixi run --workers 2`
//! by a real headless Chromium (Debian's, which `tools/test` installs with
//! `tools/chromium/install` and names in EXELIXI_CHROMIUM). Without it the test fails,
//! saying how to run it.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::browser::{bounded, browser, chromium, dump_dom, get, plot_vertices, text_of};
use support::{children_of, signal, wait_with_deadline, zombie};

/// Checks `text` line by line as the Prometheus text format: comments (`# HELP`, `# TYPE`,
/// `# UNIT`, `# EOF`) and samples `name{labels} value`; returns the samples.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split(' ').next().unwrap();
            assert!(["HELP", "TYPE", "UNIT", "EOF"].contains(&kind), "bad comment: {line}");
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in: {line}"));
        let metric = name.split('{').next().unwrap();
        assert!(
            !metric.is_empty() && metric.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        if let Some(labels) = name.strip_prefix(metric) {
            assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')), "bad labels: {line}");
        }
        samples.push((name.to_string(), value));
    }
    assert_eq!(text.lines().last(), Some("# EOF"), "OpenMetrics text ends with # EOF");
    samples
}

fn sample(samples: &[(String, f64)], name: &str) -> f64 {
    samples.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no sample {name} in {samples:?}")).1
}

/// Starts the run; returns it and the status address it printed.
fn start_run() -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exelixi"))
        .args([
            "run",
            "--workers",
            "2",
            "--status",
            "127.0.0.1:0",
            "--problem",
            "rastrigin",
            "--size",
            "30",
            "--pop",
            "4000",
            "--gens",
            "1000000",
            "--max-indiv",
            "100000000000",
            "--threads",
            "1",
            "--seed",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut BufReader::new(stdout), &mut std::io::sink()));
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "stderr ended before the status address");
        if let Some(rest) = line.trim().strip_prefix("exelixi: status page at http://") {
            break rest.trim_end_matches('/').to_string();
        }
        assert!(Instant::now() < deadline, "no status address on stderr");
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, addr)
}

#[test]
fn a_browser_watches_a_run_over_two_workers_and_prometheus_reads_its_metrics() {
    let chromium = chromium();
    let profile = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-chromium");
    let _ = std::fs::remove_dir_all(&profile);
    let (mut run, addr) = start_run();
    let url = format!("http://{addr}/");
    // Until the first generations are in.
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&addr, "/api/status").1.contains(r#""generation":null"#) {
        assert!(Instant::now() < deadline, "no generation within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    // As served: the figures and the plot agree.
    let first = dump_dom(&profile, &url, Duration::ZERO);
    let g1: u32 = text_of(&first, "generation").parse().expect("a generation number");
    assert_eq!(plot_vertices(&first), g1 as usize + 1, "one point per finished generation");
    assert_eq!(first.matches(r#"<tr class="worker">"#).count(), 2, "both workers listed");
    assert!(first.contains("http://127.0.0.1:"), "the workers' endpoints");
    // After the page's own script has refreshed it (two seconds of its time).
    let second = dump_dom(&profile, &url, Duration::from_secs(2));
    let g2: u32 = text_of(&second, "generation").parse().expect("a generation number");
    assert!(g2 > g1, "the generation shown rises between two loads: {g1} then {g2}");
    assert_eq!(plot_vertices(&second), g2 as usize + 1, "one point per finished generation after a refresh");
    let evaluations: u64 = text_of(&second, "evaluations").parse().unwrap();
    let before: u64 = text_of(&first, "evaluations").parse().unwrap();
    assert!(before >= 4000 && evaluations > before, "{before} then {evaluations} evaluations");

    // A picture for people: target/tmp/status-page.png (kept by CI as an artifact).
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    bounded(
        browser(&profile)
            .args(["--window-size=1100,1000", "--virtual-time-budget=1500"])
            .arg(format!("--screenshot={}", shot.display()))
            .arg(&url),
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot ({} bytes)", png.len());

    // Prometheus text, with the counters a dashboard needs.
    let (head, metrics) = get(&addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
    let samples = parse_prometheus(&metrics);
    let generations = sample(&samples, "exelixi_generations_total");
    assert!(generations >= f64::from(g2), "{generations} generations at generation {g2}");
    assert!(sample(&samples, "exelixi_evaluations_total") >= evaluations as f64);
    let best = sample(&samples, "exelixi_best_fitness");
    assert!((0.0..=1.0).contains(&best) && best > 0.0, "{best}");
    // One observation a call: a step, or a chain of steps (several generations), on each
    // of the 2 workers.
    let steps = sample(&samples, r#"exelixi_phase_seconds_count{phase="next then admit"}"#);
    assert!((2.0..=2.0 * generations + 2.0).contains(&steps), "{steps} step calls for {generations} generations");
    assert!(sample(&samples, r#"exelixi_payload_bytes_total{direction="received"}"#) > 0.0);
    assert_eq!(sample(&samples, "exelixi_worker_losses_total"), 0.0);
    assert_eq!(sample(&samples, "exelixi_recoveries_total"), 0.0);
    drop(chromium);

    // Ctrl-C ends the run; nothing is left behind.
    let workers = children_of(run.id());
    signal(run.id(), "-INT");
    let status = wait_with_deadline(&mut run, Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    assert!(workers.iter().all(|w| zombie(*w)), "workers left: {workers:?}");
    assert!(TcpStream::connect(&addr).is_err(), "the status server is gone with the run");
}
