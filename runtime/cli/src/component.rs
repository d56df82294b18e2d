//! `weft component`: read and annotate component files, for toolchains that
//! cannot write weft's custom sections themselves.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::CommandError;
use weft::engine::{Annotations, annotate, inspect};

/// Read or annotate a component file.
#[derive(Debug, Subcommand)]
pub enum ComponentCommand {
    Annotate(AnnotateArgs),
    Inspect(InspectArgs),
}

/// Embed a flow's name and parameter schema in a component.
///
/// componentize-py and componentize-js cannot write custom sections; the
/// Python and JavaScript SDKs' build helpers call this after them. The name
/// and the schema are checked as weft reads them (a name without control
/// characters, a valid JSON Schema), and a component that has either
/// section already is refused.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  weft component annotate etl.wasm --flow-name etl --parameters-schema schema.json")]
pub struct AnnotateArgs {
    /// The component file.
    #[arg(value_name = "COMPONENT")]
    component: PathBuf,
    /// The flow's name (`weft:flow-name`).
    #[arg(long, value_name = "NAME")]
    flow_name: Option<String>,
    /// A file holding the parameters' JSON Schema (`weft:parameters-schema`),
    /// or `-` for standard input.
    #[arg(long, value_name = "FILE")]
    parameters_schema: Option<PathBuf>,
    /// Where to write the annotated component [default: over COMPONENT].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Print what weft reads from a component without running it: its world,
/// flow name, parameter schema and exports.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component file.
    #[arg(value_name = "COMPONENT")]
    component: PathBuf,
}

pub(super) fn component(command: ComponentCommand) -> Result<ExitCode, CommandError> {
    match command {
        ComponentCommand::Annotate(args) => annotate_file(args),
        ComponentCommand::Inspect(args) => inspect_file(args),
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, CommandError> {
    if path.is_dir() {
        return Err(CommandError(format!("`{}` is a directory, not a component file", path.display())));
    }
    std::fs::read(path).map_err(|e| CommandError(format!("cannot read `{}`: {e}", path.display())))
}

fn annotate_file(args: AnnotateArgs) -> Result<ExitCode, CommandError> {
    let source = args.component.display().to_string();
    let bytes = read(&args.component)?;
    let parameters_schema = match &args.parameters_schema {
        None => None,
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| CommandError(format!("cannot read the schema from standard input: {e}")))?
            } else {
                std::fs::read_to_string(path)
                    .map_err(|e| CommandError(format!("cannot read schema file `{}`: {e}", path.display())))?
            };
            let schema = serde_json::from_str(&text)
                .map_err(|e| CommandError(format!("schema file `{}` is not JSON: {e}", path.display())))?;
            Some(schema)
        }
    };
    let annotations = Annotations { flow_name: args.flow_name, parameters_schema };
    let annotated = annotate(&bytes, &source, &annotations)?;
    let output = args.output.unwrap_or(args.component);
    // Written aside and renamed, so a failed write never leaves half a file.
    let temp = output.with_extension(format!("wasm.{}.tmp", std::process::id()));
    std::fs::write(&temp, &annotated)
        .and_then(|()| std::fs::rename(&temp, &output))
        .map_err(|e| CommandError(format!("cannot write `{}`: {e}", output.display())))?;
    eprintln!("Annotated `{}`", output.display());
    Ok(ExitCode::SUCCESS)
}

fn inspect_file(args: InspectArgs) -> Result<ExitCode, CommandError> {
    let source = args.component.display().to_string();
    let info = inspect(&read(&args.component)?, &source)?;
    let world = match (info.is_flow(), info.is_task()) {
        (true, _) => "flow",
        (false, true) => "task",
        (false, false) => "none",
    };
    let json = serde_json::json!({
        "world": world,
        "flow_name": info.flow_name,
        "parameters_schema": info.parameters_schema,
        "exports": info.exports,
    });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(ExitCode::SUCCESS)
}
