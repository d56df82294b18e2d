//! The web UI in a real headless Chromium, driven over WebDriver
//! (chromedriver) from Rust: what a user sees and clicks. Screenshots of
//! each page land in `target/ui-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`make test` installs
//! them); `WEFT_TEST_CHROMIUM` and `WEFT_TEST_CHROMEDRIVER` point elsewhere.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use weft::model::State;

use crate::agent::{AgentProcess, deploy, run_and_watch, run_deployment, state, wait_for};
use crate::endpoints::free_port;
use crate::store::Backend;
use crate::ui::{UiProcess, deployments_yaml};

/// chromedriver and one browser session on it.
struct Browser {
    driver: Child,
    client: Client,
    /// Chromium's profile: removed after the session and the driver end.
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let chromedriver = std::env::var("WEFT_TEST_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium = std::env::var("WEFT_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = free_port();
        // Its own process group, with the chromium it starts: a test that
        // fails before closing its session leaves no browser behind.
        let driver = Command::new(&chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver} ({e}): `make test` installs chromium-driver"));
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
        ];
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!("an object"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut client = None;
        for _ in 0..100 {
            // chromedriver speaks plain HTTP on loopback.
            let connector =
                ClientBuilder::new(HttpConnector::new()).capabilities(capabilities.clone()).connect(&url).await;
            match connector {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Browser { driver, client: client.expect("a browser session on chromedriver"), _profile: profile }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The text of the first element matching `css`, or "" when none does.
    async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.map(|all| all.len()).unwrap_or(0)
    }

    /// Waits until the element matching `css` has text containing `want`;
    /// on a timeout, keeps a screenshot and says what the page showed.
    async fn wait_text(&self, css: &str, want: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if self.text(css).await.contains(want) {
                return;
            }
            if std::time::Instant::now() > deadline {
                self.screenshot("failed").await;
                let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
                let body = self.text("body").await;
                panic!(
                    "timed out waiting for `{css}` to show `{want}` on {url} (target/ui-screenshots/failed.png):\n{body}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        element.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Saves the page as `target/ui-screenshots/<name>.png`.
    async fn screenshot(&self, name: &str) {
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots");
        std::fs::create_dir_all(&folder).expect("screenshot folder");
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(folder.join(format!("{name}.png")), png).expect("write screenshot");
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver and every chromium process go before the profile does.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_run_shows_on_the_runs_page_with_its_timeline_and_logs() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &deployments_yaml());
    let _agent = AgentProcess::start(&backend, "ui-browser", &[]);
    let ui = UiProcess::start(&backend, &[]);
    let browser = Browser::start().await;
    browser.goto(&ui.url("/runs")).await;
    browser.wait_text("table.runs", "No runs.").await;
    // The page is open before the run exists: it comes in live.
    run_and_watch(&backend, "etl", &[]);
    let id = backend.open().run_ids().await.expect("runs").pop().expect("a run");
    let row = format!("tr[data-run='{id}']");
    browser.wait_text(&row, "Completed").await;
    assert!(browser.text(&row).await.contains("tutorial"), "the deployment's tags show");
    assert_eq!(browser.count("img#chart").await, 1);
    browser.screenshot("runs").await;

    browser.click(&format!("{row} a[href='/runs/{id}']")).await;
    browser.wait_text("#run-state", "Completed").await;
    let tasks = browser.client.find_all(Locator::Css("#timeline g.task")).await.expect("task bars");
    let mut names = Vec::new();
    for task in &tasks {
        names.push(task.attr("data-task").await.expect("attr").unwrap_or_default());
    }
    assert_eq!(names, ["extract", "transform", "load"]);
    browser.wait_text("#logs", "Here's your data: [10, 20, 30]").await;
    assert_eq!(browser.text("#result").await.split_whitespace().collect::<String>(), "[10,20,30]");
    browser.screenshot("run").await;

    browser.goto(&ui.url("/deployments")).await;
    browser.wait_text("tr[data-deployment='etl']", "tutorial").await;
    assert_eq!(browser.count("tr[data-deployment='etl'] .strip .cell.state-completed").await, 1);
    browser.screenshot("deployments").await;
    browser.goto(&ui.url("/agents")).await;
    browser.wait_text("tr[data-agent='ui-browser']", "online").await;
    browser.screenshot("agents").await;
    browser.goto(&ui.url("/pools")).await;
    browser.wait_text("section[data-pool='kubernetes']", "default").await;
    browser.screenshot("pools").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_page_follows_a_running_runs_logs_and_its_cancel_button_stops_it() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &deployments_yaml());
    let _agent = AgentProcess::start(&backend, "ui-follow", &[]);
    let id = run_deployment(&backend, "slow", &["ticks=400", "interval_ms=100"]);
    let store = backend.open();
    wait_for("the run to start", Duration::from_secs(60), async || state(&store, &id).await == Some(State::Running))
        .await;
    let ui = UiProcess::start(&backend, &[]);
    let browser = Browser::start().await;
    browser.goto(&ui.url(&format!("/runs/{id}"))).await;
    browser.wait_text("#run-state", "Running").await;
    let at_first = browser.count("#logs .line").await;
    // New lines arrive without a reload.
    wait_for("new log lines on the page", Duration::from_secs(30), async || {
        browser.count("#logs .line").await >= at_first + 5
    })
    .await;
    let ticks = browser.text("#logs").await;
    assert!(ticks.contains(&format!("tick {}", at_first + 3)), "{ticks}");
    browser.screenshot("run-live").await;

    browser.click("#cancel").await;
    browser.wait_text("#run-state", "Cancelled").await;
    assert_eq!(browser.count("#cancel").await, 0, "no cancel button on an ended run");
    assert_eq!(state(&store, &id).await, Some(State::Cancelled));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_form_refuses_a_bad_parameter_runs_a_good_one_and_shows_markup_as_text() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &deployments_yaml());
    let _agent = AgentProcess::start(&backend, "ui-form", &[]);
    let ui = UiProcess::start(&backend, &[]);
    let browser = Browser::start().await;
    browser.goto(&ui.url("/deployments/params")).await;
    assert_eq!(
        browser.client.find(Locator::Css("#param-n")).await.expect("n").attr("type").await.expect("type"),
        Some("number".into())
    );
    browser.fill("#param-n", "300").await;
    browser.click("#run-submit").await;
    // The schema's own message, beside the field, as the command line gives it.
    browser.wait_text("[data-field='n'] .field-error", "255").await;
    browser.screenshot("run-form-error").await;
    assert!(backend.open().run_ids().await.expect("runs").is_empty(), "nothing was scheduled");

    let hostile = "<script>alert(1)</script>";
    browser.fill("#param-name", hostile).await;
    browser.fill("#param-n", "4").await;
    browser.click("#run-submit").await;
    browser.wait_text("#run-state", "Completed").await;
    let id = backend.open().run_ids().await.expect("runs").pop().expect("the run");
    assert!(browser.client.current_url().await.expect("url").path().ends_with(&id));
    browser.wait_text("#logs", &format!("name={hostile}")).await;
    assert!(browser.text("#parameters").await.contains(hostile));
    let scripts = browser.client.execute("return document.querySelectorAll('main script').length", vec![]).await;
    assert_eq!(scripts.expect("script count"), json!(0), "the markup stayed text");
    assert!(browser.client.get_alert_text().await.is_err(), "no alert was opened");
    browser.screenshot("run-form-done").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_token_the_browser_gets_401_and_with_it_every_page() {
    let backend = Backend::file();
    let _dir = deploy(&backend, &deployments_yaml());
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "browser-token").expect("token");
    let ui = UiProcess::start(&backend, &["--token-file", token_file.to_str().expect("path")]);
    let browser = Browser::start().await;
    browser.goto(&ui.url("/deployments")).await;
    assert!(browser.text("body").await.starts_with("401"), "{}", browser.text("body").await);
    browser.goto(&ui.url("/deployments?token=browser-token")).await;
    browser.wait_text("h1", "Deployments").await;
    assert_eq!(browser.client.current_url().await.expect("url").query(), None, "the token leaves the address");
    browser.goto(&ui.url("/deployments/params")).await;
    browser.wait_text("h1", "Deployment params").await;
    browser.close().await;
}
