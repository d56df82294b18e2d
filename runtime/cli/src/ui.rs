//! `weft ui`: the web UI and its JSON API over a store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use weft_ui::{DEFAULT_PORT, UiConfig};

use super::CommandError;
use super::store_args::StoreArgs;

/// Serve the web UI: runs with their timelines and live logs, deployments
/// with run forms, agents and work pools, and the JSON API under /api/.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Where to listen. Any address but loopback needs a token or
    /// --insecure-no-auth.
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    listen: SocketAddr,
    /// A file holding the token every request must carry (as
    /// `Authorization: Bearer`, or once as `?token=` in a browser).
    #[arg(long, value_name = "PATH", conflicts_with = "insecure_no_auth")]
    token_file: Option<PathBuf>,
    /// The token itself; --token-file is preferred, since the environment of
    /// a process can be read by others on some systems.
    #[arg(long = "token", env = "WEFT_UI_TOKEN", hide_env_values = true, value_name = "TOKEN", hide = true)]
    token: Option<String>,
    /// Serve without a token on any address: only behind something that
    /// checks who comes in.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Hide and refuse every action (run, cancel, pause).
    #[arg(long)]
    read_only: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub(super) async fn ui(args: UiArgs) -> Result<ExitCode, CommandError> {
    let token = match (&args.token_file, args.token) {
        (Some(path), _) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| CommandError(format!("cannot read the token file `{}`: {e}", path.display())))?
                .trim()
                .to_owned(),
        ),
        (None, token) => token.filter(|t| !t.is_empty()),
    };
    let store = args.store.open()?;
    store.check().await?;
    let config = UiConfig { store, token, insecure_no_auth: args.insecure_no_auth, read_only: args.read_only };
    config.check(args.listen).map_err(CommandError)?;
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| {
        CommandError(format!(
            "cannot listen on {}: {e} (is another `weft ui` there? choose another with --listen)",
            args.listen
        ))
    })?;
    let address = listener.local_addr().unwrap_or(args.listen);
    let token_note = if config.token.is_some() { " (open it once with ?token=<token>)" } else { "" };
    eprintln!("weft ui: serving store `{}` on http://{address}/{token_note}", config.store.url());
    weft_ui::serve(config, listener, super::terminated())
        .await
        .map_err(|e| CommandError(format!("the UI stopped: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
