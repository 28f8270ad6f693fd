//! Workspace hygiene, checked from `cargo metadata` and the files themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/tidy is two levels down").to_path_buf()
}

/// `cargo metadata` for the workspace, read once for all the tests.
fn metadata() -> &'static Value {
    static METADATA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    METADATA.get_or_init(read_metadata)
}

fn read_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Ids of proc-macro packages: they run in the compiler and are not linked, so what they
/// depend on is not a run-time dependency of their users.
fn proc_macros(meta: &Value) -> BTreeSet<String> {
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "proc-macro"))
        })
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

/// Package id -> name, for every package in the graph.
fn names(meta: &Value) -> BTreeMap<String, String> {
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_string(), p["name"].as_str().unwrap().to_string()))
        .collect()
}

/// Every package a workspace crate depends on at run time (normal dependencies, followed
/// transitively; dev- and build-dependencies are not part of what it links, nor is what a
/// proc-macro uses).
fn runtime_closure(meta: &Value, crate_name: &str) -> BTreeSet<String> {
    let names = names(meta);
    let macros = proc_macros(meta);
    let nodes: BTreeMap<&str, &Value> =
        meta["resolve"]["nodes"].as_array().unwrap().iter().map(|n| (n["id"].as_str().unwrap(), n)).collect();
    let start = names.iter().find(|(_, n)| n.as_str() == crate_name).map(|(id, _)| id.clone());
    let start = start.unwrap_or_else(|| panic!("no package {crate_name}"));
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        for dep in nodes[id.as_str()]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            let pkg = dep["pkg"].as_str().unwrap().to_string();
            if normal && seen.insert(names[&pkg].clone()) && !macros.contains(&pkg) {
                stack.push(pkg);
            }
        }
    }
    seen
}

#[test]
fn every_crate_stays_within_its_boundary() {
    let meta = metadata();
    let ours = ["ga-core", "hashring", "worker-service", "uow", "mesos-client"];
    // What each lib.rs says it must not depend on (directly or not).
    let rules: &[(&str, &[&str])] = &[
        ("ga-core", &["tokio", "tonic", "prost", "hyper", "mesos-client", "worker-service", "uow", "hashring"]),
        ("hashring", &ours),
        ("worker-service", &["ga-core", "uow", "mesos-client", "hashring"]),
        ("uow", &["mesos-client"]),
        ("mesos-client", &["ga-core", "uow", "worker-service", "hashring", "tonic"]),
    ];
    let mut broken = Vec::new();
    for (krate, forbidden) in rules {
        let deps = runtime_closure(meta, krate);
        for f in *forbidden {
            if *f != *krate && deps.contains(*f) {
                broken.push(format!("{krate} depends on {f}"));
            }
        }
        // Libraries report errors with thiserror; anyhow is for binaries.
        if deps.contains("anyhow") {
            broken.push(format!("{krate} (a library) depends on anyhow"));
        }
    }
    assert!(broken.is_empty(), "boundaries crossed (see each crate's lib.rs): {broken:#?}");
}

/// The Rust files of a package, with their text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

/// Whether `text` uses the crate `ident` as a path (`ident::`, `use ident`, `extern crate`).
fn uses(text: &str, ident: &str) -> bool {
    text.match_indices(ident).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = &text[i + ident.len()..];
        let starts = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        starts && (after.starts_with("::") || after.starts_with(';') || after.starts_with(" as "))
    })
}

#[test]
fn no_crate_declares_a_dependency_it_does_not_use_or_declares_one_twice() {
    // Used by generated code (OUT_DIR), not by name in our sources.
    let generated: &[(&str, &str)] = &[("worker-service", "tonic-prost"), ("worker-service", "prost")];
    let meta = metadata();
    let members: BTreeSet<&str> =
        meta["workspace_members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    let mut problems = Vec::new();
    for p in meta["packages"].as_array().unwrap() {
        if !members.contains(p["id"].as_str().unwrap()) {
            continue;
        }
        let name = p["name"].as_str().unwrap();
        let dir = Path::new(p["manifest_path"].as_str().unwrap()).parent().unwrap();
        let files = sources(dir);
        let mut declared: BTreeMap<(String, String), usize> = BTreeMap::new();
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            let kind = d["kind"].as_str().unwrap_or("normal").to_string();
            // The same dependency for another target is fine; twice for the same is not.
            let key = (dep.to_string(), format!("{kind} {}", d["target"].as_str().unwrap_or("")));
            *declared.entry(key).or_default() += 1;
            if generated.contains(&(name, dep)) {
                continue;
            }
            let ident = d["rename"].as_str().unwrap_or(dep).replace('-', "_");
            let in_scope = |path: &Path| {
                let build = path.file_name().is_some_and(|f| f == "build.rs");
                if kind == "build" { build } else { !build }
            };
            if !files.iter().any(|(path, text)| in_scope(path) && uses(text, &ident)) {
                problems.push(format!("{name}: {kind} dependency {dep} is never used"));
            }
        }
        let mut kinds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (dep, kind) in declared.keys() {
            kinds.entry(dep.as_str()).or_default().push(kind.trim().to_string());
        }
        for (dep, k) in kinds {
            // A normal dependency is already there for tests: listing it as a dev one too
            // is a second copy to keep in step (unless the dev one adds features).
            if k.iter().any(|x| x == "normal") && k.iter().any(|x| x == "dev") {
                let dev_features =
                    p["dependencies"].as_array().unwrap().iter().any(|d| {
                        d["name"] == dep && d["kind"] == "dev" && !d["features"].as_array().unwrap().is_empty()
                    });
                if !dev_features {
                    problems.push(format!("{name}: {dep} is declared as a normal and a dev dependency"));
                }
            }
        }
        for ((dep, kind), n) in declared {
            if n > 1 {
                problems.push(format!("{name}: {dep} declared {n} times ({kind})"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The `code spans` of a Markdown text that name a file or folder of ours.
fn named_paths(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, span) in markdown.split('`').enumerate() {
        if i % 2 == 0 || span.contains(' ') || span.starts_with("../") || span.contains("://") {
            continue;
        }
        let looks_like_file = [".rs", ".md", ".proto", ".toml"].iter().any(|e| span.ends_with(e));
        let looks_like_dir = span.contains('/') && span.chars().all(|c| c.is_alphanumeric() || "/_-.".contains(c));
        if looks_like_file || looks_like_dir {
            out.push(span.to_string());
        }
    }
    out
}

#[test]
fn the_files_the_architecture_names_exist() {
    let root = root();
    let text = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    // A path is relative to the repository, or to the crate (or folder) its section maps.
    let mut bases = vec![root.clone()];
    for dir in ["crates", "bins", "examples", "tools"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            bases.push(entry.path());
            bases.push(entry.path().join("src"));
        }
    }
    bases.push(root.join("benches"));
    bases.push(root.join("crates/ga-core/src/problems"));
    bases.push(root.join("crates/mesos-client/src/scheduler"));
    // Code spans that look like paths and are not: the ring's shard names.
    let not_paths = ["shard/NN"];
    let paths: Vec<String> = named_paths(&text).into_iter().filter(|p| !not_paths.contains(&p.as_str())).collect();
    assert!(paths.len() > 20, "the map names files: {paths:?}");
    let missing: Vec<&String> =
        paths.iter().filter(|p| !bases.iter().any(|b| b.join(p.trim_end_matches('/')).exists())).collect();
    assert!(missing.is_empty(), "docs/ARCHITECTURE.md names files that do not exist: {missing:?}");
}

#[test]
fn the_docs_state_the_protocol_version_the_code_speaks() {
    let root = root();
    let arch = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let stated = arch.split("PROTOCOL_VERSION` (now ").nth(1).and_then(|r| r.split(')').next());
    assert_eq!(
        stated,
        Some(worker_service::PROTOCOL_VERSION.to_string().as_str()),
        "docs/ARCHITECTURE.md states another PROTOCOL_VERSION than worker_service's"
    );
    let lib = std::fs::read_to_string(root.join("crates/worker-service/src/lib.rs")).unwrap();
    assert!(lib.contains(&format!("pub const PROTOCOL_VERSION: u32 = {};", worker_service::PROTOCOL_VERSION)));
}
