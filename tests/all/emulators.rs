//! The object-store emulators the store tests run against: moto (S3),
//! Azurite (Azure Blob) and fake-gcs-server (GCS, behind
//! `tests/emulators/gcs_proxy.py`), installed by `tests/emulators/install.sh`
//! (`make test` runs it). Each is started once per test process on a port
//! picked here, bound to 127.0.0.1, and stopped when the test process exits:
//! it runs under a shell that kills it as soon as its stdin, a pipe held by
//! this process, closes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running emulator.
pub(crate) struct Emulator {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// For the GCS proxy: the file where it records every request, one JSON
    /// object per line.
    pub record: Option<PathBuf>,
    /// Held open for the life of the process; closing it stops the emulator.
    _lifeline: Mutex<ChildStdin>,
    /// The watching shell; it ends with the emulator and removes its folder
    /// (the emulator is a static, never dropped).
    _shell: Mutex<Child>,
    _dir: tempfile::TempDir,
}

/// The well-known key of Azurite's development account.
pub(crate) const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An account SAS for the development account (services b, resource types
/// sco, permissions rwdlac, until 2099), signed with [`AZURITE_KEY`]: lets
/// the tests create a container with a plain HTTP request.
const AZURITE_SAS: &str = "sv=2019-12-12&ss=b&srt=sco&sp=rwdlac&st=2020-01-01T00%3A00%3A00Z\
    &se=2099-12-31T00%3A00%3A00Z&spr=http&sig=RHcKm7Xp3he5W4XI%2Bz4Xl9hKGoyt0gWAJxh9qWCEINY%3D";

/// The bucket (container) each emulator gets; tests use a fresh prefix in it.
pub(crate) const BUCKET: &str = "weft-test";

fn emulators_dir() -> PathBuf {
    std::env::var_os("WEFT_EMULATORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/emulators"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Sends one HTTP/1.1 request and returns the status code and body.
pub(crate) fn http(method: &str, endpoint: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         x-ms-version: 2019-12-12\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

fn start(name: &str, args: impl Fn(u16, &std::path::Path) -> Vec<String>, ready_path: &str) -> Emulator {
    start_program(&emulators_dir().join("bin").join(name), args, ready_path)
}

fn start_program(
    bin: &std::path::Path,
    args: impl Fn(u16, &std::path::Path) -> Vec<String>,
    ready_path: &str,
) -> Emulator {
    let name = bin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    assert!(bin.exists(), "{} is not installed: run tests/emulators/install.sh (`make test` does)", bin.display());
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut command = vec![bin.display().to_string()];
    command.extend(args(port, dir.path()));
    let quoted: Vec<String> = command.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
    let log = dir.path().join("emulator.log");
    let script = format!(
        "{} </dev/null >'{}' 2>&1 & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid; rm -rf '{}'",
        quoted.join(" "),
        log.display(),
        dir.path().display()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let lifeline = child.stdin.take().expect("piped stdin");
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while http("GET", &endpoint, ready_path, "").is_err() {
        if Instant::now() > deadline {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("{name} did not start on {endpoint} within 60s:\n{output}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Emulator { endpoint, record: None, _lifeline: Mutex::new(lifeline), _shell: Mutex::new(child), _dir: dir }
}

/// moto's S3 server, with the test bucket.
pub(crate) fn s3() -> &'static Emulator {
    static S3: OnceLock<Emulator> = OnceLock::new();
    S3.get_or_init(|| {
        let emulator = start(
            "moto_server",
            |port, _| vec!["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()],
            "/moto-api/",
        );
        let (status, body) = http("PUT", &emulator.endpoint, &format!("/{BUCKET}"), "").expect("create bucket");
        assert_eq!(status, 200, "creating the S3 bucket: {body}");
        emulator
    })
}

/// Azurite's blob service, with the test container.
pub(crate) fn azure() -> &'static Emulator {
    static AZURE: OnceLock<Emulator> = OnceLock::new();
    AZURE.get_or_init(|| {
        let emulator = start(
            "azurite-blob",
            |port, dir| {
                [
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &port.to_string(),
                    "--location",
                    &dir.display().to_string(),
                    "--skipApiVersionCheck",
                    "--loose",
                    "--disableTelemetry",
                    "--silent",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            },
            "/devstoreaccount1?comp=list",
        );
        let path = format!("/devstoreaccount1/{BUCKET}?restype=container&{AZURITE_SAS}");
        let (status, body) = http("PUT", &emulator.endpoint, &path, "").expect("create container");
        assert_eq!(status, 201, "creating the Azure container: {body}");
        emulator
    })
}

/// fake-gcs-server with the test bucket, behind `tests/emulators/gcs_proxy.py`,
/// which turns object_store's XML-API uploads into the JSON-API multipart
/// uploads on which fake-gcs-server checks `ifGenerationMatch`, and records
/// every request (see tests/emulators/README.md). The endpoint is the proxy's.
pub(crate) fn gcs() -> &'static Emulator {
    static GCS: OnceLock<Emulator> = OnceLock::new();
    GCS.get_or_init(|| {
        let server = start(
            "fake-gcs-server",
            |port, _| {
                let public = format!("127.0.0.1:{port}");
                [
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-port",
                    &port.to_string(),
                    "-backend",
                    "memory",
                    "-public-host",
                    &public,
                    "-external-url",
                    &format!("http://{public}"),
                    "-log-level",
                    "warn",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            },
            "/_internal/healthcheck",
        );
        let body = format!("{{\"name\":\"{BUCKET}\"}}");
        let (status, answer) =
            http("POST", &server.endpoint, "/storage/v1/b?project=test", &body).expect("create bucket");
        assert_eq!(status, 200, "creating the GCS bucket: {answer}");

        let python = emulators_dir().join("venv/bin/python");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("emulators/gcs_proxy.py");
        let upstream = server.endpoint.clone();
        let record = std::env::temp_dir().join(format!("weft-gcs-requests-{}.jsonl", std::process::id()));
        let record_arg = record.display().to_string();
        let mut proxy = start_program(
            &python,
            move |port, _| {
                vec![
                    script.display().to_string(),
                    "--listen-port".into(),
                    port.to_string(),
                    "--upstream".into(),
                    upstream.clone(),
                    "--record".into(),
                    record_arg.clone(),
                    "--quiet".into(),
                ]
            },
            "/_internal/healthcheck",
        );
        proxy.record = Some(record);
        // The proxy is useless without its upstream: keep both alive together.
        Box::leak(Box::new(server));
        proxy
    })
}
