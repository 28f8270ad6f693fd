//! The board: what a run has told so far, as the page, its JSON and the metrics show it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ga_core::GenerationStats;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use scheduler::MesosView;
use serde_json::json;
use uow::{Recovery, RunWatch};

use crate::plot::{self, Point, escape};

/// Generations kept for the plot: one point each up to this many; past it, every other
/// one is dropped (and from then on only every second, fourth… is kept), so that a run
/// of millions of generations draws in bounded time. The newest is always shown.
pub const MAX_POINTS: usize = 20_000;

type Labels = Vec<(&'static str, String)>;
type Viewer = Box<dyn Fn() -> MesosView + Send + Sync>;

/// A run as its watchers see it. Fed by the run's observer ([`Board::generation`],
/// [`Board::stopped`]) and, for a distributed run, as its [`RunWatch`]; read by the status
/// server and by `--plot`. Every method takes a short lock and returns.
pub struct Board {
    started: Instant,
    state: Mutex<State>,
    mesos: Mutex<Option<Viewer>>,
    metrics: Metrics,
}

struct State {
    title: String,
    mode: String,
    points: Vec<Point>,
    /// Generations between kept points (a power of two; 1 until [`MAX_POINTS`]).
    stride: u32,
    last: Option<Point>,
    workers: BTreeMap<u32, Row>,
    recoveries: Vec<String>,
    stopped: Option<String>,
}

/// One shard's worker.
#[derive(Default, serde::Serialize)]
struct Row {
    shard: u32,
    endpoint: String,
    worker: String,
    last_phase: String,
    last_phase_ms: f64,
    answers: u64,
    losses: u32,
}

struct Metrics {
    registry: Registry,
    generations: Counter,
    evaluations: Counter,
    best: Gauge<f64, AtomicU64>,
    phase_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    payload_bytes: Family<Labels, Counter>,
    losses: Counter,
    recoveries: Counter,
    offers: Family<Labels, Counter>,
    /// The Mesos offer counts already added to `offers` (the viewer gives totals).
    offers_seen: Mutex<(u64, u64)>,
    /// `payload_bytes`' two series, looked up once.
    sent: Counter,
    received: Counter,
    /// The last phase's histogram: a run asks the same phase over and over, and a
    /// lookup in the family allocates its label set.
    last_phase: Mutex<Option<(String, Histogram)>>,
}

fn phase_histogram() -> Histogram {
    // 100 µs to about 3.3 s.
    Histogram::new(exponential_buckets(1e-4, 2.0, 16))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("exelixi");
        let m = Metrics {
            registry: Registry::default(),
            generations: Counter::default(),
            evaluations: Counter::default(),
            best: Gauge::default(),
            phase_seconds: Family::new_with_constructor(phase_histogram as fn() -> Histogram),
            payload_bytes: Family::default(),
            losses: Counter::default(),
            recoveries: Counter::default(),
            offers: Family::default(),
            offers_seen: Mutex::new((0, 0)),
            sent: Counter::default(),
            received: Counter::default(),
            last_phase: Mutex::new(None),
        };
        let bytes = |d: &str| vec![("direction", d.to_string())];
        // One at a time: a lookup's guard holds the family's lock until its statement ends.
        let sent = m.payload_bytes.get_or_create(&bytes("sent")).clone();
        let received = m.payload_bytes.get_or_create(&bytes("received")).clone();
        registry.register("generations", "Generations finished", m.generations.clone());
        registry.register("evaluations", "Individuals evaluated (fitness computed)", m.evaluations.clone());
        registry.register("best_fitness", "The best fitness so far", m.best.clone());
        registry.register(
            "phase_seconds",
            "Time from a phase's request to each worker's answer (a step is one phase here)",
            m.phase_seconds.clone(),
        );
        registry.register(
            "payload_bytes",
            "Payload bytes of the framework's calls to its workers (sent) and of their answers (received); peer deliveries and gRPC framing not included",
            m.payload_bytes.clone(),
        );
        registry.register("worker_losses", "Workers lost", m.losses.clone());
        registry.register("recoveries", "Lost workers replaced and the run restored", m.recoveries.clone());
        registry.register("mesos_offers", "Mesos offers, by decision", m.offers.clone());
        Metrics { registry, sent, received, ..m }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Board {
    /// An empty board for a run called `title` (e.g. "rastrigin-30, seed 7"), run `mode`
    /// (e.g. "2 worker processes").
    pub fn new(title: &str, mode: &str) -> Self {
        Board {
            started: Instant::now(),
            state: Mutex::new(State {
                title: title.to_string(),
                mode: mode.to_string(),
                points: Vec::new(),
                stride: 1,
                last: None,
                workers: BTreeMap::new(),
                recoveries: Vec::new(),
                stopped: None,
            }),
            mesos: Mutex::new(None),
            metrics: Metrics::new(),
        }
    }

    /// Shows the Mesos framework as `viewer` reads it, on every load.
    pub fn set_mesos(&self, viewer: impl Fn() -> MesosView + Send + Sync + 'static) {
        *lock(&self.mesos) = Some(Box::new(viewer));
    }

    /// A generation finished.
    pub fn generation(&self, s: &GenerationStats) {
        let point = Point {
            generation: s.generation,
            evaluations: s.total_indiv,
            best: s.best,
            median: s.median,
            mean: s.mean,
            mse: s.mse,
            seconds: self.started.elapsed().as_secs_f64(),
        };
        let before = {
            let mut st = lock(&self.state);
            let before = st.last.map_or(0, |p| p.evaluations);
            if s.generation % st.stride == 0 {
                st.points.push(point);
                if st.points.len() > MAX_POINTS {
                    st.stride *= 2;
                    let stride = st.stride;
                    st.points.retain(|p| p.generation % stride == 0);
                }
            }
            st.last = Some(point);
            before
        };
        self.metrics.generations.inc();
        self.metrics.evaluations.inc_by(s.total_indiv.saturating_sub(before));
        self.metrics.best.set(s.best);
    }

    /// The run ended, and why (e.g. "target fitness reached at generation 17").
    pub fn stopped(&self, why: &str) {
        lock(&self.state).stopped = Some(why.to_string());
    }

    /// Every generation kept for the plot ([`MAX_POINTS`]), and the newest.
    pub fn points(&self) -> Vec<Point> {
        lock(&self.state).points()
    }

    /// The convergence plot as an SVG document.
    pub fn plot(&self, width: u32, height: u32) -> String {
        let (points, title) = {
            let st = lock(&self.state);
            (st.points(), st.title.clone())
        };
        plot::svg(&points, &title, width, height)
    }

    /// The figures and the plot's points, read under one lock: what a page shows agrees.
    fn view(&self) -> (serde_json::Value, Vec<Point>, String) {
        let mesos = lock(&self.mesos).as_ref().map(|v| v());
        let st = lock(&self.state);
        let points = st.points();
        (self.status_of(&st, &points, mesos), points, st.title.clone())
    }

    /// The metrics in the Prometheus (OpenMetrics) text format.
    pub fn metrics_text(&self) -> String {
        if let Some(view) = lock(&self.mesos).as_ref().map(|v| v()) {
            let mut seen = lock(&self.metrics.offers_seen);
            let labels = |d: &str| vec![("decision", d.to_string())];
            self.metrics.offers.get_or_create(&labels("accepted")).inc_by(view.offers_accepted.saturating_sub(seen.0));
            self.metrics.offers.get_or_create(&labels("declined")).inc_by(view.offers_declined.saturating_sub(seen.1));
            *seen = (seen.0.max(view.offers_accepted), seen.1.max(view.offers_declined));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.metrics.registry);
        out
    }

    /// Evaluations per second over the last ten seconds of generations (or the run so far).
    fn rate(points: &[Point], last: Option<Point>) -> f64 {
        let Some(last) = last else { return 0.0 };
        let from = points.iter().find(|p| last.seconds - p.seconds <= 10.0).copied();
        match from {
            Some(from) if last.seconds > from.seconds => {
                (last.evaluations - from.evaluations.min(last.evaluations)) as f64 / (last.seconds - from.seconds)
            }
            _ if last.seconds > 0.0 => last.evaluations as f64 / last.seconds,
            _ => 0.0,
        }
    }

    /// Everything the page shows, as JSON.
    pub fn status(&self) -> serde_json::Value {
        self.view().0
    }

    fn status_of(&self, st: &State, points: &[Point], mesos: Option<MesosView>) -> serde_json::Value {
        let last = st.last;
        json!({
            "title": st.title,
            "mode": st.mode,
            "elapsed_seconds": self.started.elapsed().as_secs_f64(),
            "generation": last.map(|p| p.generation),
            "generations_finished": last.map_or(0, |p| p.generation + 1),
            "points": points.len(),
            "evaluations": last.map_or(0, |p| p.evaluations),
            "evaluations_per_second": Self::rate(&st.points, last),
            "best": last.map(|p| p.best),
            "median": last.map(|p| p.median),
            "mean": last.map(|p| p.mean),
            "mse": last.map(|p| p.mse),
            "stopped": st.stopped,
            "workers": st.workers.values().collect::<Vec<_>>(),
            "recoveries": st.recoveries,
            "mesos": mesos.map(|m| json!({
                "master": m.master,
                "framework_id": m.framework_id,
                "offers_accepted": m.offers_accepted,
                "offers_declined": m.offers_declined,
                "agents": m.slots.iter().map(|s| json!({
                    "shard": s.shard,
                    "agent_id": s.agent_id,
                    "hostname": s.hostname,
                    "executor_id": s.executor_id,
                    "worker_task": s.worker_task,
                    "discovery_task": s.discovery_task,
                    "endpoint": s.endpoint,
                    "last_status": s.last_status,
                    "lost": s.lost,
                    "telemetry": s.telemetry.as_deref().and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok()),
                })).collect::<Vec<_>>(),
            })),
        })
    }

    /// The status page: the figures, the plot and the workers as they are now; its script
    /// refreshes them every second.
    pub fn html(&self) -> String {
        let (status, points, title) = self.view();
        let plot = plot::svg(&points, &title, 900, 380);
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "–".to_string(),
            serde_json::Value::String(s) => escape(s),
            serde_json::Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), figure),
            other => escape(&other.to_string()),
        };
        let mut page = String::with_capacity(8192 + plot.len());
        let _ = write!(
            page,
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Exelixi: {title}</title>
<style>
body {{ font: 14px/1.4 sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 20px; margin: 0 0 .3em; }} h2 {{ font-size: 16px; margin: 1.2em 0 .4em; }}
.figures {{ display: flex; flex-wrap: wrap; gap: .6em 2em; margin: .8em 0; }}
.figures div span {{ display: block; font-size: 12px; color: #666; }} .figures b {{ font-size: 18px; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #ddd; padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }}
code {{ font-size: 11px; }} .stopped {{ color: #1b7f3b; font-weight: bold; }}
</style></head>
<body>
<h1>Exelixi: <span id="title">{title}</span></h1>
<div id="mode">{mode}</div>
<div class="figures">
<div><span>generation</span><b id="generation">{generation}</b></div>
<div><span>evaluations</span><b id="evaluations">{evaluations}</b></div>
<div><span>evaluations/s</span><b id="rate">{rate}</b></div>
<div><span>best</span><b id="best">{best}</b></div>
<div><span>median</span><b id="median">{median}</b></div>
<div><span>mean</span><b id="mean">{mean}</b></div>
<div><span>MSE</span><b id="mse">{mse}</b></div>
<div><span>elapsed</span><b id="elapsed">{elapsed}</b></div>
</div>
<div id="stopped" class="stopped">{stopped}</div>
<div id="plot">{plot}</div>
<div id="workers">{workers}</div>
<div id="mesos">{mesos}</div>
<script>
async function refresh() {{
  try {{
    const parts = await (await fetch('/parts', {{cache: 'no-store'}})).json();
    const s = parts.status;
    const fig = v => v === null || v === undefined ? '–' : (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(5)) : String(v));
    for (const k of ['generation', 'evaluations', 'best', 'median', 'mean', 'mse']) document.getElementById(k).textContent = fig(s[k]);
    document.getElementById('rate').textContent = Math.round(s.evaluations_per_second).toString();
    document.getElementById('elapsed').textContent = s.elapsed_seconds.toFixed(1) + ' s';
    document.getElementById('stopped').textContent = s.stopped ? 'stopped: ' + s.stopped : '';
    document.getElementById('plot').innerHTML = parts.plot;
    document.getElementById('workers').innerHTML = parts.workers;
    document.getElementById('mesos').innerHTML = parts.mesos;
  }} catch (e) {{ document.getElementById('mode').textContent += ' (run over: the page no longer refreshes)'; clearInterval(timer); }}
}}
const timer = setInterval(refresh, 1000);
</script>
</body></html>
"#,
            title = text(&status["title"]),
            mode = text(&status["mode"]),
            generation = text(&status["generation"]),
            evaluations = text(&status["evaluations"]),
            rate = figure(status["evaluations_per_second"].as_f64().unwrap_or(0.0).round()),
            best = text(&status["best"]),
            median = text(&status["median"]),
            mean = text(&status["mean"]),
            mse = text(&status["mse"]),
            elapsed = Elapsed(status["elapsed_seconds"].as_f64().unwrap_or(0.0)),
            stopped = status["stopped"].as_str().map(|s| format!("stopped: {}", escape(s))).unwrap_or_default(),
            workers = workers_html(&status),
            mesos = mesos_html(&status),
        );
        page
    }

    /// The parts of the page that the script replaces: plot, workers and Mesos, as HTML.
    pub fn parts(&self) -> serde_json::Value {
        let (status, points, title) = self.view();
        json!({
            "plot": plot::svg(&points, &title, 900, 380),
            "workers": workers_html(&status),
            "mesos": mesos_html(&status),
            "status": status,
        })
    }
}

impl State {
    fn points(&self) -> Vec<Point> {
        let mut points = self.points.clone();
        if let Some(last) = self.last {
            if points.last().is_none_or(|kept| kept.generation != last.generation) {
                points.push(last);
            }
        }
        points
    }
}

/// Seconds as the page shows them.
struct Elapsed(f64);

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} s", self.0)
    }
}

/// A figure for people: whole numbers as they are, others to five significant digits.
fn figure(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.0}")
    } else {
        let digits = 4 - f.abs().log10().floor().clamp(-10.0, 4.0) as i32;
        format!("{f:.*}", digits.max(0) as usize)
    }
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "–".into(),
        serde_json::Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

fn workers_html(status: &serde_json::Value) -> String {
    let Some(workers) = status["workers"].as_array().filter(|w| !w.is_empty()) else { return String::new() };
    let mut out = String::from(
        "<h2>Workers</h2><table><tr><th>shard</th><th>endpoint</th><th>worker</th><th>last phase</th><th>its time</th><th>answers</th><th>losses</th></tr>",
    );
    for w in workers {
        let _ = write!(
            out,
            r#"<tr class="worker"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2} ms</td><td>{}</td><td>{}</td></tr>"#,
            cell(&w["shard"]),
            cell(&w["endpoint"]),
            cell(&w["worker"]),
            cell(&w["last_phase"]),
            w["last_phase_ms"].as_f64().unwrap_or(0.0),
            cell(&w["answers"]),
            cell(&w["losses"]),
        );
    }
    out.push_str("</table>");
    if let Some(r) = status["recoveries"].as_array().filter(|r| !r.is_empty()) {
        out.push_str("<h2>Recoveries</h2><ul>");
        for line in r {
            let _ = write!(out, "<li>{}</li>", cell(line));
        }
        out.push_str("</ul>");
    }
    out
}

/// The discovery telemetry in a few words (the original's names: `cpu_num`, `mem_free`,
/// `disk_usage.percent`, `ip_addr`); the whole JSON is one click away.
fn telemetry_summary(t: &serde_json::Value) -> String {
    if t.is_null() {
        return "not yet".into();
    }
    let mut parts = Vec::new();
    if let Some(n) = t["cpu_num"].as_u64() {
        parts.push(format!("{n} CPUs"));
    }
    if let Some(free) = t["mem_free"].as_u64() {
        parts.push(format!("{:.1} GiB free", free as f64 / f64::from(1u32 << 30)));
    }
    if let Some(p) = t["disk_usage"]["percent"].as_f64() {
        parts.push(format!("disk {p:.0}% used"));
    }
    if let Some(ip) = t["ip_addr"].as_str() {
        parts.push(format!("ip {ip}"));
    }
    if parts.is_empty() { "telemetry".into() } else { parts.join(", ") }
}

fn mesos_html(status: &serde_json::Value) -> String {
    let m = &status["mesos"];
    if m.is_null() {
        return String::new();
    }
    let mut out = format!(
        "<h2>Mesos</h2><div>master <b>{}</b>, framework <b id=\"framework-id\">{}</b>; offers accepted {}, declined {}</div>\
         <table><tr><th>shard</th><th>agent</th><th>host</th><th>executor</th><th>worker task</th><th>last state</th><th>telemetry</th></tr>",
        cell(&m["master"]),
        cell(&m["framework_id"]),
        cell(&m["offers_accepted"]),
        cell(&m["offers_declined"]),
    );
    for a in m["agents"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            r#"<tr class="agent"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td><details><summary>{}</summary><code class="telemetry">{}</code></details></td></tr>"#,
            cell(&a["shard"]),
            cell(&a["agent_id"]),
            cell(&a["hostname"]),
            cell(&a["executor_id"]),
            cell(&a["worker_task"]),
            cell(&a["last_status"]),
            if a["lost"].as_bool() == Some(true) { " (lost)" } else { "" },
            escape(&telemetry_summary(&a["telemetry"])),
            cell(&a["telemetry"]),
        );
    }
    out.push_str("</table>");
    out
}

impl RunWatch for Board {
    fn placed(&self, shard: u32, endpoint: &str, worker: &str) {
        let mut st = lock(&self.state);
        let row = st.workers.entry(shard).or_default();
        row.shard = shard;
        row.endpoint = endpoint.to_string();
        row.worker = worker.to_string();
    }

    fn answered(&self, shard: u32, phase: &str, took: Duration, sent: usize, received: usize) {
        {
            let mut st = lock(&self.state);
            let row = st.workers.entry(shard).or_default();
            row.shard = shard;
            if row.last_phase != phase {
                phase.clone_into(&mut row.last_phase);
            }
            row.last_phase_ms = took.as_secs_f64() * 1e3;
            row.answers += 1;
        }
        {
            let mut last = lock(&self.metrics.last_phase);
            if last.as_ref().is_none_or(|(name, _)| name != phase) {
                let histogram = self.metrics.phase_seconds.get_or_create(&vec![("phase", phase.to_string())]).clone();
                *last = Some((phase.to_string(), histogram));
            }
            if let Some((_, histogram)) = last.as_ref() {
                histogram.observe(took.as_secs_f64());
            }
        }
        self.metrics.sent.inc_by(sent as u64);
        self.metrics.received.inc_by(received as u64);
    }

    fn lost(&self, shard: u32, worker: &str, phase: &str, reason: &str) {
        {
            let mut st = lock(&self.state);
            let row = st.workers.entry(shard).or_default();
            row.shard = shard;
            row.losses += 1;
            row.worker = format!("{worker} — lost during {phase}: {reason}");
        }
        self.metrics.losses.inc();
    }

    fn recovered(&self, recovery: &Recovery) {
        lock(&self.state).recoveries.push(recovery.to_string());
        self.metrics.recoveries.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(generation: u32, total: u64, best: f64) -> GenerationStats {
        GenerationStats {
            generation,
            size: 10,
            total_indiv: total,
            mse: 1.0 - best,
            max: best,
            median: best / 2.0,
            mean: best / 3.0,
            best,
            cutoff: 0.0,
            duplicates: 0,
        }
    }

    #[test]
    fn the_board_keeps_one_point_per_generation_and_counts_in_its_metrics() {
        let board = Board::new("onemax-100 <seed 7>", "in process");
        for g in 0..25 {
            board.generation(&stats(g, 100 * u64::from(g + 1), f64::from(g) / 25.0));
        }
        assert_eq!(board.points().len(), 25);
        let status = board.status();
        assert_eq!(status["generation"], 24);
        assert_eq!(status["points"], 25);
        assert_eq!(status["evaluations"], 2500);
        let metrics = board.metrics_text();
        assert!(metrics.contains("exelixi_generations_total 25"), "{metrics}");
        assert!(metrics.contains("exelixi_evaluations_total 2500"), "{metrics}");
        assert!(metrics.contains("exelixi_best_fitness 0.96"), "{metrics}");
        assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
        let html = board.html();
        assert!(html.contains(r#"<b id="generation">24</b>"#), "{html}");
        assert!(html.contains("onemax-100 &lt;seed 7&gt;"));
    }

    #[test]
    fn past_the_cap_points_thin_out_by_halves_and_the_newest_stays() {
        let board = Board::new("t", "m");
        let n = MAX_POINTS as u32 + 7;
        for g in 0..n {
            board.generation(&stats(g, u64::from(g), 0.5));
        }
        let points = board.points();
        assert!(points.len() <= MAX_POINTS + 1 && points.len() > MAX_POINTS / 2, "{}", points.len());
        assert!(points[..points.len() - 1].iter().all(|p| p.generation % 2 == 0));
        assert_eq!(points.last().unwrap().generation, n - 1);
        assert_eq!(board.status()["points"], points.len());
    }

    #[test]
    fn workers_phases_losses_and_mesos_offers_show_on_the_page_and_in_the_metrics() {
        let board = Board::new("t", "2 workers");
        board.placed(0, "http://127.0.0.1:1", "pid 1");
        board.placed(1, "http://127.0.0.1:2", "pid 2");
        board.answered(1, "next then admit", Duration::from_millis(3), 10, 2000);
        board.lost(1, "pid 2", "next then admit", "killed");
        board.set_mesos(|| MesosView {
            master: "127.0.0.1:5050".into(),
            framework_id: Some("fw-1".into()),
            slots: vec![],
            offers_accepted: 2,
            offers_declined: 5,
        });
        let html = board.html();
        assert_eq!(html.matches(r#"<tr class="worker">"#).count(), 2, "{html}");
        assert!(html.contains("lost during next then admit: killed"));
        assert!(html.contains("fw-1"));
        let metrics = board.metrics_text();
        for line in [
            r#"exelixi_payload_bytes_total{direction="received"} 2000"#,
            "exelixi_worker_losses_total 1",
            r#"exelixi_mesos_offers_total{decision="declined"} 5"#,
            r#"exelixi_phase_seconds_count{phase="next then admit"} 1"#,
        ] {
            assert!(metrics.contains(line), "{line} not in {metrics}");
        }
        // Totals from the viewer are not added twice.
        assert!(board.metrics_text().contains(r#"exelixi_mesos_offers_total{decision="declined"} 5"#));
    }
}
