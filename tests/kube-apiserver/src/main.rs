//! Serves the test API server by hand until Ctrl-C:
//! `weft-kube-apiserver [--port N] [--kubeconfig PATH] [--namespace NS]
//! [--rewrite FROM=TO]... [--grace SECONDS]`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use weft_kube_apiserver::{Config, TestApiServer};

const USAGE: &str = "usage: weft-kube-apiserver [--port N] [--kubeconfig PATH] [--namespace NS] [--rewrite FROM=TO]... [--grace SECONDS]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = Config::default();
    let mut kubeconfig: Option<PathBuf> = None;
    let mut namespace = "default".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--port" => config.port = value()?.parse().context("--port takes a number")?,
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value()?)),
            "--namespace" => namespace = value()?,
            "--rewrite" => {
                let rule = value()?;
                let (from, to) =
                    rule.split_once('=').with_context(|| format!("--rewrite takes FROM=TO, got {rule:?}"))?;
                config.command_rewrites.insert(from.to_owned(), PathBuf::from(to));
            }
            "--grace" => {
                let seconds: f64 = value()?.parse().context("--grace takes seconds")?;
                config.termination_grace_period = Some(Duration::try_from_secs_f64(seconds)?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let server = TestApiServer::start(config).await?;
    if let Some(path) = &kubeconfig {
        server.write_kubeconfig(path, &namespace)?;
        println!("kubeconfig written to {}", path.display());
    }
    println!("serving the test Kubernetes API on {}", server.url());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}
