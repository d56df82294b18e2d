//! `weft push`: upload a component to the store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CommandError;
use super::store_args::StoreArgs;
use weft::engine::inspect;

/// Upload a flow or task component to the store, content-addressed.
///
/// Prints the component's URL in the store and its digest, one per line;
/// either can be given to `weft run`. Pushing the same bytes again uploads
/// nothing.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The component file (`.wasm`).
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Also record the component under this name, so that `weft run NAME`
    /// runs the latest component pushed under it.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    #[command(flatten)]
    store: StoreArgs,
}

pub(super) async fn push(args: PushArgs) -> Result<ExitCode, CommandError> {
    let label = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).map_err(|e| CommandError(format!("cannot read component `{label}`: {e}")))?;
    // Refuse what could never run before it takes space in the store.
    inspect(&bytes, &label)?;
    let store = args.store.open()?;
    let pushed = store.push_artifact(&bytes, args.name.as_deref()).await?;
    let what = if pushed.uploaded { "pushed" } else { "already in the store:" };
    eprintln!("{what} {label} ({})", weft::engine::format_bytes(bytes.len() as u64));
    println!("{}", pushed.url);
    println!("{}", pushed.digest);
    Ok(ExitCode::SUCCESS)
}
