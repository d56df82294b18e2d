//! The results table `make bench` writes: each benchmark records its figures
//! in `target/bench/results/<bench>.json`, then renders every file there
//! (the Prefect side's `prefect.json` too) into `target/bench/results.md`
//! and `target/bench/results.json`. A figure keeps every sample, its median
//! and spread, and the command that reproduces it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where the results go: `target/bench/`.
pub fn results_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench")
}

/// One measured figure.
pub struct Figure {
    id: String,
    what: String,
    unit: &'static str,
    samples: Vec<f64>,
    command: String,
    /// Other numbers that belong to the figure (peak RSS, requests, ...).
    extra: BTreeMap<String, Value>,
    system: Option<String>,
}

impl Figure {
    pub fn new(id: &str, what: &str, unit: &'static str, samples: Vec<f64>, command: &str) -> Figure {
        assert!(!samples.is_empty(), "figure {id} has no samples");
        Figure {
            id: id.to_owned(),
            what: what.to_owned(),
            unit,
            samples,
            command: command.to_owned(),
            extra: BTreeMap::new(),
            system: None,
        }
    }

    /// Durations, reported in milliseconds.
    pub fn millis(id: &str, what: &str, samples: &[Duration], command: &str) -> Figure {
        Figure::new(id, what, "ms", samples.iter().map(|d| d.as_secs_f64() * 1e3).collect(), command)
    }

    /// Durations, reported in microseconds.
    pub fn micros(id: &str, what: &str, samples: &[Duration], command: &str) -> Figure {
        Figure::new(id, what, "µs", samples.iter().map(|d| d.as_secs_f64() * 1e6).collect(), command)
    }

    /// A named extra number: `peak_rss_mib`, `store_requests`, ...
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Figure {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// The system a side-by-side figure (`compare.*`) is for.
    pub fn system(mut self, system: &str) -> Figure {
        self.system = Some(system.to_owned());
        self
    }

    fn to_json(&self) -> Value {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        let mut figure = json!({
            "id": self.id,
            "what": self.what,
            "unit": self.unit,
            "samples": self.samples.iter().map(|v| round(*v)).collect::<Vec<_>>(),
            "median": round(quantile(&sorted, 0.5)),
            "p95": round(quantile(&sorted, 0.95)),
            "min": round(sorted[0]),
            "max": round(sorted[sorted.len() - 1]),
            "command": self.command,
        });
        if let Some(system) = &self.system {
            figure["system"] = system.clone().into();
        }
        for (key, value) in &self.extra {
            figure[key] = value.clone();
        }
        figure
    }
}

fn round(value: f64) -> f64 {
    if value.abs() >= 100.0 { (value * 10.0).round() / 10.0 } else { (value * 1000.0).round() / 1000.0 }
}

/// The `q` quantile of sorted samples (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// The figures of one benchmark.
pub struct Report {
    source: &'static str,
    figures: Vec<Figure>,
}

impl Report {
    pub fn new(source: &'static str) -> Report {
        Report { source, figures: Vec::new() }
    }

    /// Records a figure and prints it.
    pub fn add(&mut self, figure: Figure) {
        let json = figure.to_json();
        println!(
            "{}: median {} {}, {} to {}, n={}{}",
            figure.id,
            json["median"],
            figure.unit,
            json["min"],
            json["max"],
            figure.samples.len(),
            figure.system.as_deref().map(|s| format!(" ({s})")).unwrap_or_default()
        );
        self.figures.push(figure);
    }

    /// Writes this benchmark's file and renders the table from every file.
    pub fn write(self) {
        let dir = results_dir().join("results");
        std::fs::create_dir_all(&dir).expect("create target/bench/results");
        let file = json!({
            "source": self.source,
            "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "cores": cores(),
            "figures": self.figures.iter().map(Figure::to_json).collect::<Vec<_>>(),
        });
        let path = dir.join(format!("{}.json", self.source));
        std::fs::write(&path, serde_json::to_string_pretty(&file).expect("json")).expect("write results");
        render();
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The order benchmarks appear in the table.
const ORDER: &[&str] = &["engine", "cli", "stores", "agent", "kubernetes", "guests", "output_caps", "ui", "compare"];

/// Renders `results.md` and `results.json` from every results file.
pub fn render() {
    let dir = results_dir();
    let mut sources: Vec<Value> = std::fs::read_dir(dir.join("results"))
        .map(|entries| {
            entries
                .map_while(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|text| serde_json::from_str(&text).ok())
                .collect()
        })
        .unwrap_or_default();
    let rank = |source: &Value| {
        let name = source["source"].as_str().unwrap_or_default();
        ORDER.iter().position(|s| *s == name).unwrap_or(ORDER.len())
    };
    sources.sort_by_key(rank);

    let mut md = String::from("# weft benchmark results\n\n");
    md.push_str(
        "Written by `make bench` (and `make bench-prefect` for the side-by-side table). Each figure gives the \
         median of its samples, the spread (p95 where it is a latency, min to max otherwise) and the command \
         that reproduces it. Figures from different benchmarks were taken at different times: compare within \
         a row.\n\n",
    );
    md.push_str("| benchmark | taken (UTC) | cores |\n| --- | --- | --- |\n");
    for source in &sources {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            source["source"].as_str().unwrap_or_default(),
            source["date"].as_str().unwrap_or_default(),
            source["cores"]
        ));
    }
    for source in sources.iter().filter(|s| s["source"] != "prefect" && s["source"] != "compare") {
        md.push_str(&format!("\n## {}\n\n", source["source"].as_str().unwrap_or_default()));
        md.push_str("| figure | median | spread | n | also | command |\n| --- | --- | --- | --- | --- | --- |\n");
        for figure in source["figures"].as_array().into_iter().flatten() {
            md.push_str(&row(figure));
        }
    }
    md.push_str(&compare_table(&sources));
    std::fs::write(dir.join("results.md"), md).expect("write results.md");
    let all = json!({ "sources": sources });
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&all).expect("json"))
        .expect("write results.json");
}

const KNOWN: &[&str] = &["id", "what", "unit", "samples", "median", "p95", "min", "max", "command", "system"];

fn row(figure: &Value) -> String {
    let unit = figure["unit"].as_str().unwrap_or_default();
    let spread = if unit.ends_with("/s") {
        format!("{} to {}", number(&figure["min"]), number(&figure["max"]))
    } else {
        format!("p95 {}, {} to {}", number(&figure["p95"]), number(&figure["min"]), number(&figure["max"]))
    };
    let also: Vec<String> = figure
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| !KNOWN.contains(&key.as_str()))
        .map(|(key, value)| format!("{key} {}", number(value)))
        .collect();
    format!(
        "| {} | {} {unit} | {spread} | {} | {} | {} |\n",
        figure["what"].as_str().unwrap_or_default(),
        number(&figure["median"]),
        figure["samples"].as_array().map_or(0, Vec::len),
        also.join(", "),
        code(&figure["command"].as_str().unwrap_or_default().replace('|', "\\|")),
    )
}

/// A markdown code span, however many backticks the text holds.
fn code(text: &str) -> String {
    if text.contains('`') { format!("`` {text} ``") } else { format!("`{text}`") }
}

fn number(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            Some(f) if f.abs() >= 100.0 => format!("{f:.1}"),
            Some(f) => format!("{f:.3}").trim_end_matches('0').trim_end_matches('.').to_owned(),
            None => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The side-by-side table: the `compare.*` figures of weft and of Prefect.
fn compare_table(sources: &[Value]) -> String {
    let figures: Vec<&Value> = sources
        .iter()
        .flat_map(|s| s["figures"].as_array().into_iter().flatten())
        .filter(|f| f["id"].as_str().is_some_and(|id| id.starts_with("compare.")))
        .collect();
    if figures.is_empty() {
        return String::new();
    }
    let systems = ["weft-rust", "weft-python", "prefect-temporary-server", "prefect-running-server"];
    let mut ids: Vec<&str> = figures.iter().filter_map(|f| f["id"].as_str()).collect();
    ids.dedup();
    ids.sort_by_key(|id| WORKLOADS.iter().position(|(w, _)| w == id).unwrap_or(WORKLOADS.len()));
    ids.dedup();
    let mut md = String::from(
        "\n## Side by side: weft and Prefect 3\n\nWall time of one whole run, median (ms). weft runs each task as a \
         task component in a fresh sandbox (Rust or Python component) unless the workload says otherwise; \
         Prefect runs `python <flow>.py`, with its default temporary server or against a server already running. \
         The ratio is Prefect (running server) over weft (Rust).\n\n\
         | workload | weft, Rust | weft, Python | Prefect, temporary server | Prefect, running server | ratio |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for id in ids {
        let find = |system: &str| figures.iter().find(|f| f["id"] == id && f["system"] == system);
        let cells: Vec<String> =
            systems.iter().map(|s| find(s).map(|f| number(&f["median"])).unwrap_or_else(|| "–".into())).collect();
        let ratio = match (find("prefect-running-server"), find("weft-rust")) {
            (Some(p), Some(w)) => match (p["median"].as_f64(), w["median"].as_f64()) {
                (Some(p), Some(w)) if w > 0.0 => format!("{:.0}×", p / w),
                _ => "–".into(),
            },
            _ => "–".into(),
        };
        let name = WORKLOADS.iter().find(|(w, _)| *w == id).map_or(id, |(_, name)| name);
        md.push_str(&format!("| {name} | {} | {ratio} |\n", cells.join(" | ")));
    }
    md.push_str(
        "\nWindmill's published single-worker figures, from another machine (windmill.dev/docs/misc/benchmarks): \
         400 lightweight Go tasks, Windmill 19.7 s, Temporal 39.0 s, Hatchet 35.8 s; 10 long Python tasks \
         (fibo(33)), Prefect 15.5 s, Temporal 7.2 s, Windmill 8.3 s.\n\nThe commands:\n\n",
    );
    for figure in &figures {
        md.push_str(&format!(
            "- {} ({}): {}\n",
            figure["id"].as_str().unwrap_or_default(),
            figure["system"].as_str().unwrap_or_default(),
            code(figure["command"].as_str().unwrap_or_default())
        ));
    }
    md
}

const WORKLOADS: &[(&str, &str)] = &[
    ("compare.etl", "etl (three in-component tasks)"),
    ("compare.tasks_1000", "1,000 in-component tasks"),
    ("compare.windmill.fibo10x40", "40 sequential tasks, fibo(10) each"),
    ("compare.windmill.fibo33x10", "10 sequential tasks, fibo(33) each"),
    ("compare.windmill.light400", "400 sequential lightweight tasks"),
];

/// A process that ran: its wall time, peak resident memory and output.
pub struct Ran {
    pub wall: Duration,
    pub peak_rss_kib: u64,
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end, with its output in files (however much it
/// writes), and returns its wall time and peak RSS (from `wait4`).
// The child is reaped by `wait4`, which `Child::wait` cannot do.
#[allow(clippy::zombie_processes)]
pub fn run_process(command: &mut Command) -> Ran {
    let out = tempfile::tempfile().expect("temp file");
    let err = tempfile::tempfile().expect("temp file");
    command.stdin(Stdio::null()).stdout(out.try_clone().expect("dup")).stderr(err.try_clone().expect("dup"));
    let started = Instant::now();
    let child = command.spawn().expect("spawn");
    let (status, rusage) = wait4(child.id());
    let wall = started.elapsed();
    let read = |mut file: std::fs::File| {
        use std::io::{Read, Seek};
        let mut text = String::new();
        let _ = file.seek(std::io::SeekFrom::Start(0));
        let _ = file.take(1 << 20).read_to_string(&mut text);
        text
    };
    Ran { wall, peak_rss_kib: rusage.ru_maxrss as u64, status, stdout: read(out), stderr: read(err) }
}

/// Waits for the child `pid`: its exit status and resource usage.
#[allow(unsafe_code)]
fn wait4(pid: u32) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: `rusage` is plain data the kernel fills in; `pid` is our child,
    // which `std::process::Child` never waits for once dropped.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut rusage) };
    assert_eq!(waited, pid as i32, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    (code, rusage)
}

/// Median of sorted durations.
pub fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
