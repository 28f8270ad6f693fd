//! The `exelixi` binary as a user runs it: output format, reproducibility, bad input.

use std::process::{Command, Output};

fn exelixi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exelixi")).args(args).output().expect("exelixi runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

fn is_sci(s: &str) -> bool {
    // C's %.2e: d.dde±dd
    let b = s.as_bytes();
    b.len() == 8
        && b[0].is_ascii_digit()
        && b[1] == b'.'
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'e'
        && (b[5] == b'+' || b[5] == b'-')
        && b[6..].iter().all(u8::is_ascii_digit)
}

#[test]
fn the_default_run_prints_the_originals_report() {
    let o = exelixi(&["run", "--seed", "7"]);
    assert!(o.status.success(), "{o:?}");
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    let gens: Vec<&&str> = lines.iter().filter(|l| l.starts_with("gen\t")).collect();
    let indivs: Vec<&&str> = lines.iter().filter(|l| l.starts_with("indiv\t")).collect();
    // The last line says why the run stopped, as a comment the original's readers skip.
    let (last, lines) = lines.split_last().unwrap();
    assert!(last.starts_with("# stopped: ") && last.ends_with(&format!("at generation {}", gens.len() - 1)), "{last}");
    assert_eq!(gens.len() + indivs.len(), lines.len(), "unexpected lines in {text}");
    assert!(!gens.is_empty() && gens.len() <= 10);
    for (n, line) in gens.iter().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 14, "{line}");
        assert_eq!([f[0], f[2], f[4], f[6], f[8], f[10], f[12]], ["gen", "size", "total", "mse", "max", "med", "avg"]);
        assert_eq!(f[1], n.to_string());
        assert_eq!(f[3], "23", "n_pop 23 on one shard");
        assert!(f[5].parse::<u64>().is_ok());
        assert!([f[7], f[9], f[11], f[13]].iter().all(|v| is_sci(v)), "{line}");
    }
    assert!(!indivs.is_empty());
    let mut last = f64::INFINITY;
    for line in &indivs {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 4, "{line}");
        assert_eq!(f[1].len(), 6, "fitness as %.4f: {line}");
        let fitness: f64 = f[1].parse().unwrap();
        assert!(fitness <= last, "best first");
        last = fitness;
        assert!(f[2].parse::<u32>().is_ok());
        let genome: Vec<i64> = serde_json::from_str(f[3]).unwrap();
        assert_eq!(genome.len(), 5);
        assert!(genome.windows(2).all(|w| w[0] <= w[1]), "sorted genome");
        let sum: i64 = genome.iter().sum();
        assert_eq!(format!("{:.4}", (1.0 - (sum - 231).abs() as f64 / 231.0).max(0.0)), f[1]);
    }
}

#[test]
fn seed_7_prints_byte_identical_output_on_one_thread_and_two() {
    for problem in ["sum231", "onemax", "tsp"] {
        let args =
            |t: &'static str| ["run", "--problem", problem, "--seed", "7", "--threads", t, "--max-indiv", "20000"];
        let one = exelixi(&args("1"));
        let two = exelixi(&args("2"));
        assert!(one.status.success() && two.status.success());
        assert!(!one.stdout.is_empty());
        assert_eq!(one.stdout, two.stdout, "{problem}");
    }
}

#[test]
fn json_mode_prints_one_object_per_generation_and_a_result() {
    let o = exelixi(&["run", "--seed", "3", "--json"]);
    assert!(o.status.success());
    let text = stdout(&o);
    let values: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let (result, gens) = values.split_last().unwrap();
    for (n, g) in gens.iter().enumerate() {
        assert_eq!(g["gen"], n);
        assert_eq!(g["size"], 23);
        assert!(g["avg"].as_f64().is_some());
    }
    let r = &result["result"];
    assert!(r["stop"].is_string());
    let individuals = r["individuals"].as_array().unwrap();
    assert!(!individuals.is_empty());
    assert_eq!(individuals[0]["genome"].as_array().unwrap().len(), 5);
    assert_eq!(individuals[0]["key"].as_str().unwrap().len(), 16);
}

/// Runs `args`, which must fail as bad input: exit 2, nothing on stdout, one `error:` line
/// on stderr containing `needle`, no panic. Returns that line.
fn assert_usage_error(args: &[&str], needle: &str) -> String {
    let o = exelixi(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?}");
    err
}

#[test]
fn bad_input_gets_one_clear_line_and_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--problem", "nope"],
            "invalid problem: \"nope\" (expected one of: sum231, onemax, rastrigin, knapsack, tsp, zdt1, zdt2, zdt3)",
        ),
        (&["run", "--pop", "0"], "invalid pop: 0"),
        (&["run", "--selection-rate", "1.5"], "invalid selection-rate: 1.5"),
        (&["run", "--pop", "many"], "'many'"),
        (&["run", "--mutation-rate", "x"], "'x'"),
        (&["run", "--threads", "99999999"], "invalid threads"),
        (&["run", "--problem", "tsp", "--size", "3"], "--size"),
        (&["run", "--elites", "500", "--selection", "tournament"], "invalid elites"),
        (
            &["run", "--elites", "2", "--selection", "plus"],
            "invalid elites: 2 (expected no --elites under plus selection",
        ),
        (&["run", "--problem", "onemax", "--elites", "2"], "invalid elites: 2 (expected no --elites under plus"),
        (&["run", "--selection", "plus", "--tournament-size", "0"], "invalid tournament-size: 0"),
        (
            &["run", "--problem", "onemax", "--offspring", "0"],
            "invalid offspring: 0 (expected a fraction of the population in (0, 1]",
        ),
        (
            &["run", "--problem", "onemax", "--offspring", "0.5", "--selection", "tournament"],
            "invalid offspring: 0.5 (expected --offspring with plus selection only",
        ),
        (&["run", "--offspring", "0.5"], "invalid offspring: 0.5 (expected --offspring with plus selection only"),
        (&["run", "--problem", "onemax", "--migrants", "2"], "--migrants and --topology go with --migrate-every K"),
        (&["run", "--problem", "onemax", "--topology", "full"], "--migrants and --topology go with --migrate-every K"),
        (&["run", "--migrate-every", "5"], "invalid selection: cutoff (expected tournament or plus with islands"),
        (&["run", "--problem", "onemax", "--migrate-every", "0"], "invalid migrate-every: 0"),
        (&["run", "--problem", "onemax", "--migrate-every", "5", "--migrants", "101"], "invalid migrants: 101"),
        (&["run", "--problem", "onemax", "--migrate-every", "5", "--topology", "star"], "'star'"),
        (&["run", "--no-such-flag"], "--no-such-flag"),
        (&["run", "--problem", "onemax", "--size", "1000000000000"], "invalid size"),
        (&["run", "--pop", "99999999999999"], "invalid pop"),
        (&["run", "--seed", "1e3"], "'1e3'"),
        (&["run", "--workers", "2", "--phase-timeout", "0"], "invalid phase-timeout: 0"),
        (&["run", "--phase-timeout", "-5"], "'--phase-timeout <SECS>': expected a whole number, 1 to 86400"),
        (&["run", "--checkpoint-every", "5"], "invalid checkpoint-every: it needs --checkpoint DIR"),
        (&["run", "--checkpoint", "/tmp/x", "--checkpoint-every", "0"], "invalid checkpoint-every: 0"),
        (&["run", "--max-recoveries", "2"], "invalid max-recoveries: it applies to runs over workers"),
        (&["run", "--compute-class", "idle"], "invalid compute-class: it applies to runs over workers"),
        (&["run", "--workers", "2", "--compute-class", "fast"], "\"fast\": expected idle or normal"),
        (&["worker", "--compute-class", "batch"], "\"batch\": expected idle or normal"),
        (&["run", "--status", "localhost"], "invalid status: \"localhost\" (expected an address and port"),
        (&["run", "--plot", "/tmp"], "invalid plot: \"/tmp\" (expected a file"),
        (&["run", "--workers", "2", "--max-recoveries", "5000"], "invalid max-recoveries: 5000"),
        (&["run", "--checkpoint", ""], "a value is required for '--checkpoint <DIR>'"),
    ];
    for (args, needle) in cases {
        assert_usage_error(args, needle);
    }
}

#[test]
fn negative_numbers_are_named_with_their_flag_and_domain() {
    // clap took a negative value for an unknown flag: "unexpected argument '-0' found" for
    // `--mutation-rate -0.1`, a value nobody typed.
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--pop", "-5"], "invalid value '-5' for '--pop <N>': expected a whole number, 2 to 100000000"),
        (&["run", "--mutation-rate", "-0.1"], "invalid mutation-rate: -0.1 (expected a number in [0, 1])"),
        (&["run", "--mutation-rate", "-inf"], "invalid mutation-rate: -inf (expected a number in [0, 1])"),
        (&["run", "--selection-rate", "-1e-3"], "invalid selection-rate: -0.001"),
        (&["run", "--target", "-1"], "invalid target: -1"),
        (&["run", "--term-limit", "-2"], "invalid term-limit: -2"),
        (&["run", "--seed", "-1"], "'--seed <N>': expected a whole number, 0 to 18446744073709551615"),
        (&["run", "--workers", "-2"], "'--workers <N>': expected a whole number, 1 to 64"),
        (&["run", "--gens", "-1"], "'--gens <N>': expected a whole number"),
        (&["run", "--size", "-3"], "'--size <N>': expected a whole number, 1 to 1000000"),
        (&["worker", "--port", "-1"], "'--port <P>': expected a whole number, 0 to 65535"),
    ];
    for (args, needle) in cases {
        assert_usage_error(args, needle);
    }
}

#[test]
fn a_run_too_big_for_memory_is_refused_before_it_allocates() {
    // Each needs tens of GiB at least; before, the allocator aborted the process (exit 134,
    // "memory allocation of 4800000000 bytes failed" and a backtrace).
    for args in [
        &["run", "--pop", "100000000"][..],
        &["run", "--pop", "1000000", "--size", "1000000"][..],
        &["run", "--problem", "rastrigin", "--size", "1000000", "--pop", "100000", "--gens", "1"][..],
        &["run", "--pop", "100000000", "--workers", "2"][..],
    ] {
        let err = assert_usage_error(args, "error: invalid configuration: a run of this size needs about ");
        assert!(err.contains("GiB is available"), "{args:?}: {err}");
    }
}

#[test]
fn every_builtin_problem_runs() {
    for problem in ga_core::problems::NAMES {
        let o = exelixi(&["run", "--problem", problem, "--max-indiv", "3000", "--seed", "1"]);
        assert!(o.status.success(), "{problem}: {o:?}");
        assert!(stdout(&o).lines().any(|l| l.starts_with("indiv\t")), "{problem}");
    }
}

#[test]
fn bad_mesos_flags_get_one_clear_line_and_exit_code_2_before_any_connection() {
    // Port 1 of loopback: nothing listens, so reaching the check that needs a master
    // would show as a different error.
    let m = ["mesos", "--master", "127.0.0.1:1"];
    let cases: &[(&[&str], &str)] = &[
        (&[], "exelixi mesos needs --workers N"),
        (&["--workers", "2", "--cpu", "0"], "invalid cpu: 0"),
        (&["--workers", "2", "--cpu", "x"], "expected a number of CPUs"),
        (&["--workers", "2", "--mem", "8"], "invalid mem: 8"),
        (&["--workers", "2", "--executor", "relative/exelixi"], "expected an absolute path"),
        (&["--workers", "2", "--placement-timeout", "0"], "invalid placement-timeout: 0"),
        (&["--workers", "2", "--problem", "nope"], "invalid problem: \"nope\""),
        (&["--workers", "0"], "invalid workers: 0"),
    ];
    for (extra, needle) in cases {
        let args: Vec<&str> = m.iter().chain(extra.iter()).copied().collect();
        assert_usage_error(&args, needle);
    }
    let o = exelixi(&["mesos", "--master", "not-a-master", "--workers", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("invalid Mesos master \"not-a-master\""), "{err}");
    let o = exelixi(&["nodes", "--master", "127.0.0.1:1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: cannot reach the Mesos master at 127.0.0.1:1"), "{err}");
}

#[test]
fn the_executor_started_by_hand_says_it_needs_an_agent() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_exelixi")).arg("executor").env_clear().output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("MESOS_FRAMEWORK_ID is not set: this program must be started by a Mesos agent"), "{err}");
}

#[test]
fn plot_writes_the_convergence_plot_with_one_point_per_generation() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-plot");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("onemax.svg");
    let _ = std::fs::remove_file(&path);
    let o = exelixi(&["run", "--problem", "onemax", "--seed", "7", "--plot", path.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let generations = stdout(&o).lines().filter(|l| l.starts_with("gen\t")).count();
    let svg = std::fs::read_to_string(&path).expect("the plot is written");
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    for series in ["best", "median", "mean", "mse"] {
        let line = doc
            .descendants()
            .find(|n| n.attribute("class") == Some(&format!("series-{series}")))
            .unwrap_or_else(|| panic!("no {series} line"));
        let vertices: Vec<(f64, f64)> = line
            .attribute("points")
            .unwrap()
            .split_whitespace()
            .map(|xy| {
                let (x, y) = xy.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(vertices.len(), generations, "{series}: one vertex per generation");
        assert!(vertices.windows(2).all(|w| w[0].0 < w[1].0), "{series}: evaluations grow");
    }
    // OneMax's best only rises: its line never goes down the page.
    let best = doc.descendants().find(|n| n.attribute("class") == Some("series-best")).unwrap();
    let ys: Vec<f64> = best
        .attribute("points")
        .unwrap()
        .split_whitespace()
        .map(|p| p.split_once(',').unwrap().1.parse().unwrap())
        .collect();
    assert!(ys.windows(2).all(|w| w[1] <= w[0]), "{ys:?}");
    assert!(doc.descendants().any(|n| n.text() == Some("onemax, seed 7")), "the run in the title");
}

#[test]
fn a_multi_objective_problem_runs_nsga2_and_prints_its_front() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-front");
    std::fs::create_dir_all(&dir).unwrap();
    let plot = dir.join("zdt1.svg");
    let o = exelixi(&["run", "--problem", "zdt1", "--gens", "30", "--seed", "2", "--plot", plot.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(o.status.success(), "{o:?}");
    let gens: Vec<&str> = text.lines().filter(|l| l.starts_with("gen\t")).collect();
    assert_eq!(gens.len(), 30);
    assert!(gens[29].starts_with("gen\t29\tsize\t100\ttotal\t3000\tfront\t"), "{}", gens[29]);
    let front: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with("front\t"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let genome: Vec<f64> = serde_json::from_str(f[3]).unwrap();
            assert_eq!(genome.len(), 30);
            (f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    assert!(!front.is_empty());
    // Sorted by the first objective, and non-dominated: the second falls.
    assert!(front.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 >= w[1].1), "{front:?}");
    assert_eq!(text.lines().last(), Some("# stopped: all n_gen generations ran at generation 29"));
    let svg = std::fs::read_to_string(&plot).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("point")).count(), front.len());

    let o = exelixi(&["run", "--problem", "zdt2", "--gens", "10", "--json"]);
    let last: serde_json::Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert_eq!(last["result"]["evaluations"], 1000);
    assert!(last["result"]["front"][0]["objectives"].as_array().unwrap().len() == 2);

    // Over worker processes (they evaluate, the framework breeds and selects): the same run.
    let here = stdout(&exelixi(&["run", "--problem", "zdt3", "--gens", "15", "--size", "10", "--seed", "6"]));
    let over = exelixi(&["run", "--problem", "zdt3", "--gens", "15", "--size", "10", "--seed", "6", "--workers", "3"]);
    assert!(over.status.success(), "{over:?}");
    assert_eq!(stdout(&over), here);
    assert_usage_error(&["run", "--problem", "zdt1", "--status", "127.0.0.1:0"], "invalid status");
    assert_usage_error(&["run", "--problem", "zdt2", "--checkpoint", "/tmp/x"], "invalid checkpoint");
}

#[test]
fn plus_selection_breeds_the_offspring_fraction_of_the_population_a_generation() {
    // Population 100: the first population's 100 evaluations, then 20 children a
    // generation by default (fewer only when some are duplicates), 100 with --offspring 1.
    let total_at_gen_1 = |extra: &[&str]| {
        let mut args = vec!["run", "--problem", "onemax", "--size", "1000", "--gens", "2", "--seed", "3"];
        args.extend(extra);
        let o = exelixi(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let line = out.lines().find(|l| l.starts_with("gen\t1\t")).expect("a gen 1 line").to_string();
        let fields: Vec<&str> = line.split('\t').collect();
        fields[fields.iter().position(|f| *f == "total").expect("a total field") + 1].parse::<u64>().unwrap()
    };
    assert_eq!(total_at_gen_1(&[]), 120);
    assert_eq!(total_at_gen_1(&["--offspring", "1"]), 200);
    assert_eq!(total_at_gen_1(&["--offspring", "0.05"]), 105);
}
