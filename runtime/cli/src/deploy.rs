//! `weft deploy`: apply deployments from a deployment file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CommandError;
use super::store_args::StoreArgs;
use weft::model::DeploymentFile;

/// Apply the deployments of a deployment file to the store.
///
/// Local components are pushed, default parameters are checked against each
/// flow's schema, and nothing is applied unless every selected deployment
/// passes.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The deployment file.
    #[arg(short = 'f', long = "file", value_name = "FILE", default_value = "weft.yaml")]
    file: PathBuf,
    /// Apply only this deployment (repeatable). Default: all in the file.
    #[arg(long, value_name = "NAME")]
    name: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
}

pub(super) async fn deploy(args: DeployArgs) -> Result<ExitCode, CommandError> {
    let label = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| CommandError(format!("cannot read deployment file `{label}`: {e} (pass another with -f FILE)")))?;
    let file = DeploymentFile::parse(&text, &label)?;
    let known: Vec<&str> = file.deployments.iter().map(|d| d.name.value.as_str()).collect();
    for name in &args.name {
        if !known.contains(&name.as_str()) {
            return Err(CommandError(format!("no deployment `{name}` in `{label}` (it has: {})", known.join(", "))));
        }
    }
    let selected: Vec<_> =
        file.deployments.iter().filter(|d| args.name.is_empty() || args.name.contains(&d.name.value)).collect();
    let base_dir = args.file.parent().map(PathBuf::from).unwrap_or_default();
    let store = args.store.open()?;
    let mut prepared = Vec::new();
    for spec in selected {
        prepared.push(store.prepare_deployment(spec, &label, &base_dir, &args.store.all_options()?).await?);
    }
    for deployment in &prepared {
        store.put_deployment(deployment).await?;
        let schedules = deployment.schedule.iter().filter(|s| s.active).count();
        println!(
            "Deployed `{}`: flow `{}` ({}), {} active schedule{}, infrastructure {}",
            deployment.name,
            deployment.flow_name,
            deployment.flow,
            schedules,
            if schedules == 1 { "" } else { "s" },
            deployment.infrastructure.kind()
        );
    }
    Ok(ExitCode::SUCCESS)
}
