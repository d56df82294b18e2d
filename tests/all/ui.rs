//! `weft ui` over real HTTP: the JSON API scripts use, the token, CSRF and
//! `--read-only`. The pages themselves are driven in a real browser in
//! `browser.rs`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use weft::model::State;

use crate::agent::{AgentProcess, deploy, signal, slow_yaml, state, wait_for};
use crate::fixtures::{EXAMPLE_ETL, PARAMS};
use crate::store::Backend;
use crate::{stderr, weft};

/// A `weft ui` process, stopped when dropped.
pub(crate) struct UiProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

impl UiProcess {
    /// Starts `weft ui` on a free loopback port.
    pub(crate) fn start(backend: &Backend, extra: &[&str]) -> UiProcess {
        let mut child = weft()
            .args(["ui", "--listen", "127.0.0.1:0"])
            .args(extra)
            .args(backend.args())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weft ui");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        stderr.read_line(&mut line).expect("weft ui says where it listens");
        let base = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(|address| format!("http://{address}"))
            .unwrap_or_else(|| panic!("weft ui did not say where it listens: {line}"));
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        UiProcess { child, base }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for UiProcess {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            signal(pid, "TERM");
        }
        let _ = self.child.wait();
    }
}

/// An answer: status, headers we look at, body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) location: Option<String>,
    pub(crate) cookie: Option<String>,
    pub(crate) content_type: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request, redirects not followed.
pub(crate) fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (key, value) in headers {
        builder = builder.header(*key, *value);
    }
    let request = builder.body(body.unwrap_or_default().to_owned()).expect("request");
    let mut response = agent.run(request).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let location = header("location");
    let cookie = header("set-cookie");
    let content_type = header("content-type").unwrap_or_default();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Answer { status, body, location, cookie, content_type }
}

pub(crate) fn get(url: &str) -> Answer {
    request("GET", url, &[], None)
}

fn post_json(url: &str, body: &str) -> Answer {
    request("POST", url, &[("content-type", "application/json")], Some(body))
}

/// The deployments most UI tests use: etl (three tasks), params (a
/// schema with a required string and an even u8), slow (ticks for a while).
pub(crate) fn deployments_yaml() -> String {
    format!(
        "deployments:\n  - name: etl\n    flow: {EXAMPLE_ETL}\n    tags: [tutorial]\n  - name: params\n    flow: \
         {PARAMS}\n    parameters: {{name: Ada}}\n{}",
        slow_yaml("slow", "")
    )
}

/// Waits until the API shows the run in `want`.
async fn api_state(ui: &UiProcess, id: &str, want: &str) -> Value {
    let mut run = Value::Null;
    wait_for(&format!("run {id} to be {want}"), Duration::from_secs(90), async || {
        run = get(&ui.url(&format!("/api/runs/{id}"))).json();
        run["state"] == want
    })
    .await;
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_runs_a_deployment_and_serves_its_run_task_runs_and_logs() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &deployments_yaml());
    let _agent = AgentProcess::start(&backend, "ui-api", &[]);
    let ui = UiProcess::start(&backend, &[]);

    // Refused with the schema's problem, per parameter, as `weft deployment
    // run` refuses it.
    let bad = post_json(&ui.url("/api/deployments/params/runs"), r#"{"parameters": {"n": 300}}"#);
    assert_eq!(bad.status, 422, "{}", bad.body);
    let problems = bad.json()["problems"].clone();
    assert_eq!(problems[0]["parameter"], "n", "{problems}");
    assert!(problems[0]["message"].as_str().is_some_and(|m| m.contains("255")), "{problems}");
    let unknown = post_json(&ui.url("/api/deployments/nope/runs"), "{}");
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"].as_str().is_some_and(|e| e.contains("nope")));

    let made = post_json(&ui.url("/api/deployments/params/runs"), r#"{"parameters": {"n": 4}}"#);
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.json()["id"].as_str().expect("id").to_owned();
    let run = api_state(&ui, &id, "Completed").await;
    assert_eq!(run["parameters"], json!({"name": "Ada", "n": 4}));
    assert_eq!(run["result"], json!({"name": "Ada", "n": 4, "tag": null}));
    let states: Vec<&str> =
        run["states"].as_array().expect("states").iter().filter_map(|s| s["state"].as_str()).collect();
    assert_eq!(states, ["Scheduled", "Pending", "Running", "Completed"]);
    assert!(run["runner_host"].is_string(), "the runner names its host: {run}");

    let page = get(&ui.url("/api/runs?deployment=params&state=completed")).json();
    let ids: Vec<&str> = page["runs"].as_array().expect("runs").iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, [id.as_str()]);
    assert!(get(&ui.url("/api/runs?deployment=etl")).json()["runs"].as_array().expect("runs").is_empty());
    let bad_filter = get(&ui.url("/api/runs?state=Done"));
    assert_eq!(bad_filter.status, 400, "{}", bad_filter.body);
    assert!(bad_filter.body.contains("Completed"), "the error lists the states: {}", bad_filter.body);

    let logs = get(&ui.url(&format!("/api/runs/{id}/logs"))).json();
    let messages: Vec<&str> =
        logs["lines"].as_array().expect("lines").iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(messages.contains(&"got parameters"), "{messages:?}");
    let next = logs["next"].as_str().expect("a cursor");
    let after = get(&ui.url(&format!("/api/runs/{id}/logs?after={next}"))).json();
    assert_eq!(after["lines"], json!([]), "nothing after the last chunk");
    let warnings = get(&ui.url(&format!("/api/runs/{id}/logs?level=warn"))).json();
    assert!(warnings["lines"].as_array().expect("lines").iter().all(|l| l["level"] == "warn" || l["level"] == "error"));

    // A finished run's stream sends its lines and ends.
    let stream = get(&ui.url(&format!("/api/runs/{id}/logs/stream")));
    assert!(stream.content_type.starts_with("text/event-stream"), "{}", stream.content_type);
    assert!(stream.body.contains("event: lines") && stream.body.contains("got parameters"), "{}", stream.body);
    assert!(stream.body.trim_end().ends_with("event: end\ndata: ended"), "{}", stream.body);

    let deployments = get(&ui.url("/api/deployments")).json();
    let names: Vec<&str> =
        deployments["deployments"].as_array().expect("deployments").iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names, ["etl", "params", "slow"]);
    assert_eq!(get(&ui.url("/api/deployments/params")).json()["flow_name"], "params");
    let mut agents = Value::Null;
    wait_for("the agent's heartbeat", Duration::from_secs(30), async || {
        agents = get(&ui.url("/api/agents")).json();
        agents["agents"][0]["name"] == "ui-api"
    })
    .await;
    assert_eq!(agents["agents"][0]["status"], "online");
    let pools = get(&ui.url("/api/pools")).json();
    let pools: Vec<&str> =
        pools["pools"].as_array().expect("pools").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(pools, ["kubernetes", "process"]);
    assert_eq!(get(&ui.url("/api/runs/01ZZZZZZZZZZZZZZZZZZZZZZZZ")).status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_cancels_a_running_run_and_refuses_to_cancel_an_ended_one() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &deployments_yaml());
    let _agent = AgentProcess::start(&backend, "ui-cancel", &[]);
    let ui = UiProcess::start(&backend, &[]);
    let id = post_json(&ui.url("/api/deployments/slow/runs"), "{}").json()["id"].as_str().expect("id").to_owned();
    api_state(&ui, &id, "Running").await;
    let refused = request("POST", &ui.url(&format!("/api/runs/{id}/cancel")), &[], None);
    assert_eq!(refused.status, 415, "actions need a JSON content type: {}", refused.body);
    let cancel = post_json(&ui.url(&format!("/api/runs/{id}/cancel")), "");
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(cancel.json()["outcome"], "cancelling");
    let run = api_state(&ui, &id, "Cancelled").await;
    assert_eq!(run["states"].as_array().expect("states")[3]["by"], "ui", "{run}");
    let again = post_json(&ui.url(&format!("/api/runs/{id}/cancel")), "");
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.json()["error"].as_str().is_some_and(|e| e.contains("Cancelled already")));
    assert_eq!(state(&backend.open(), &id).await, Some(State::Cancelled));
}

#[test]
fn a_token_guards_every_route_and_a_browser_keeps_it_as_a_cookie() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &deployments_yaml());
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").expect("token file");
    let ui = UiProcess::start(&backend, &["--token-file", token_file.to_str().expect("path")]);
    let routes = [
        "/runs",
        "/runs/chart.svg",
        "/deployments",
        "/deployments/params",
        "/agents",
        "/pools",
        "/assets/weft.js",
        "/api/runs",
        "/api/deployments",
        "/api/agents",
        "/api/pools",
        "/api/runs/01ZZZZZZZZZZZZZZZZZZZZZZZZ/logs/stream",
    ];
    for route in routes {
        assert_eq!(get(&ui.url(route)).status, 401, "GET {route} without the token");
        let wrong = request("GET", &ui.url(route), &[("authorization", "Bearer s3cret-tokeN")], None);
        assert_eq!(wrong.status, 401, "GET {route} with a wrong token");
        let right = request("GET", &ui.url(route), &[("authorization", "Bearer s3cret-token")], None);
        assert_ne!(right.status, 401, "GET {route} with the token");
    }
    for route in ["/api/deployments/params/runs", "/runs/01ZZZZZZZZZZZZZZZZZZZZZZZZ/cancel"] {
        let answer = request("POST", &ui.url(route), &[("content-type", "application/json")], Some("{}"));
        assert_eq!(answer.status, 401, "POST {route} without the token");
    }
    assert!(backend_runs(&backend).is_empty(), "nothing was run without the token");

    // A browser opens a page once with ?token=, and keeps a cookie that is
    // not the token itself.
    let opened = get(&ui.url("/runs?state=Failed&token=s3cret-token"));
    assert_eq!(opened.status, 303);
    assert_eq!(opened.location.as_deref(), Some("/runs?state=Failed"));
    let cookie = opened.cookie.expect("a cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("s3cret"), "the cookie does not hold the token: {cookie}");
    let pair = cookie.split(';').next().expect("name=value").to_owned();
    let page = request("GET", &ui.url("/runs?state=Failed"), &[("cookie", &pair)], None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(get(&ui.url("/runs?token=wrong")).status, 401);
}

fn backend_runs(backend: &Backend) -> Vec<String> {
    let store = backend.open();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(store.run_ids())
        .expect("run ids")
}

#[test]
fn actions_need_the_forms_csrf_token_the_same_origin_and_a_writable_ui() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &deployments_yaml());
    let ui = UiProcess::start(&backend, &[]);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let forged = request("POST", &ui.url("/deployments/params/run"), &form, Some("param.n=4"));
    assert_eq!(forged.status, 400, "a form without the CSRF token: {}", forged.body);
    assert!(forged.body.contains("CSRF"), "{}", forged.body);
    let page = get(&ui.url("/deployments/params")).body;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form carries a CSRF token")
        .to_owned();
    let elsewhere = [("content-type", "application/x-www-form-urlencoded"), ("origin", "https://evil.example")];
    let cross =
        request("POST", &ui.url("/deployments/params/run"), &elsewhere, Some(&format!("csrf={csrf}&param.n=4")));
    assert_eq!(cross.status, 403, "{}", cross.body);
    assert!(backend_runs(&backend).is_empty());
    let sent = request("POST", &ui.url("/deployments/params/run"), &form, Some(&format!("csrf={csrf}&param.n=4")));
    assert_eq!(sent.status, 303, "{}", sent.body);
    let run = sent.location.expect("to the run's page");
    assert_eq!(backend_runs(&backend), [run.trim_start_matches("/runs/").to_owned()]);
    drop(ui);

    let read_only = UiProcess::start(&backend, &["--read-only"]);
    let page = get(&read_only.url("/deployments/params")).body;
    assert!(!page.contains("run-form") && !page.contains("Pause"), "no actions shown: {page}");
    let run_page = get(&read_only.url(&run)).body;
    assert!(!run_page.contains("Cancel run"), "{run_page}");
    let refused = post_json(&read_only.url("/api/deployments/params/runs"), "{}");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("read-only"), "{}", refused.body);
    assert_eq!(backend_runs(&backend).len(), 1);
}

#[test]
fn listening_beyond_loopback_needs_a_token_or_a_clear_choice_not_to() {
    let backend = Backend::file();
    let output = weft().args(["ui", "--listen", "0.0.0.0:0"]).args(backend.args()).output().expect("weft ui");
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("--token-file") && text.contains("--insecure-no-auth"), "{text}");
    let empty = tempfile::NamedTempFile::new().expect("file");
    let output = weft()
        .args(["ui", "--token-file", empty.path().to_str().expect("path")])
        .args(backend.args())
        .output()
        .expect("weft ui");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("token is empty"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_come_a_page_at_a_time_newest_first_through_any_number_of_pages() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &deployments_yaml());
    // No agent: the runs stay Scheduled.
    let made: Vec<String> =
        (0..5).map(|i| crate::agent::run_deployment(&backend, if i % 2 == 0 { "etl" } else { "slow" }, &[])).collect();
    let ui = UiProcess::start(&backend, &[]);
    let mut seen = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = get(&ui.url(&format!("/api/runs?{query}"))).json();
        let runs = page["runs"].as_array().expect("runs");
        assert!(runs.len() <= 2);
        seen.extend(runs.iter().filter_map(|r| r["id"].as_str().map(str::to_owned)));
        match page["next"].as_str() {
            Some(next) => query = format!("limit=2&before={next}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let etl = get(&ui.url("/api/runs?tag=tutorial")).json();
    assert_eq!(etl["runs"].as_array().expect("runs").len(), 3, "only etl has the tag: {etl}");

    // The page links to the next page the same way.
    let first = get(&ui.url("/runs?limit=2&state=Scheduled")).body;
    let older = first.split("id=\"older\" href=\"").nth(1).and_then(|r| r.split('"').next()).expect("an older link");
    let second = get(&ui.url(&older.replace("&#38;", "&").replace("&amp;", "&"))).body;
    assert!(second.contains(&made[2]) && second.contains(&made[1]) && !second.contains(&made[4]), "{second}");
}

#[test]
fn a_schedule_is_paused_and_resumed_from_its_deployment_page() {
    let backend = Backend::file();
    let yaml = format!(
        "deployments:\n  - name: nightly\n    flow: {EXAMPLE_ETL}\n    schedule:\n      - cron: \"0 6 * * *\"\n        timezone: Europe/Berlin\n"
    );
    let _dir = deploy(&backend, &yaml);
    let ui = UiProcess::start(&backend, &[]);
    let list = get(&ui.url("/deployments")).body;
    assert!(list.contains("At 06:00 (Europe/Berlin)"), "the schedule in words: {list}");
    assert_eq!(list.matches("<time>").count(), 3, "its next three times: {list}");
    let page = get(&ui.url("/deployments/nightly")).body;
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("csrf").to_owned();
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let body = format!("csrf={csrf}");
    let paused = request("POST", &ui.url("/deployments/nightly/schedules/0/pause"), &form, Some(&body));
    assert_eq!(paused.status, 303, "{}", paused.body);
    let active = |backend: &Backend| {
        let store = backend.open();
        let deployment = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(store.deployment("nightly"))
            .expect("read")
            .expect("deployment");
        deployment.schedule[0].active
    };
    assert!(!active(&backend), "paused in the store, where agents read it");
    assert!(get(&ui.url("/deployments")).body.contains("At 06:00 (Europe/Berlin), paused"));
    let resumed = request("POST", &ui.url("/deployments/nightly/schedules/0/resume"), &form, Some(&body));
    assert_eq!(resumed.status, 303);
    assert!(active(&backend));
    let missing = request("POST", &ui.url("/deployments/nightly/schedules/3/pause"), &form, Some(&body));
    assert_eq!(missing.status, 404);
}

#[test]
fn the_ui_stops_when_asked_even_while_a_page_follows_a_run() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &deployments_yaml());
    // No agent: the run stays Scheduled, and its log stream open.
    let id = crate::agent::run_deployment(&backend, "slow", &[]);
    let mut ui = UiProcess::start(&backend, &[]);
    let url = ui.url(&format!("/api/runs/{id}/logs/stream"));
    let follower = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut response = agent.get(&url).call().expect("the stream opens");
        // Reads until the UI goes away.
        let _ = response.body_mut().read_to_string();
    });
    std::thread::sleep(Duration::from_millis(500));
    let asked = std::time::Instant::now();
    signal(i32::try_from(ui.child.id()).expect("pid"), "TERM");
    let status = ui.child.wait().expect("weft ui exits");
    assert!(status.success(), "{status}");
    assert!(asked.elapsed() < Duration::from_secs(10), "stopped after {:?}", asked.elapsed());
    follower.join().expect("the stream ends with the UI");
}
