//! `weft job-template`: print the base job template.

use std::process::ExitCode;

use clap::Args;

use super::CommandError;
use weft::agent::kubernetes::BASE_JOB_TEMPLATE;

/// Print the base Kubernetes job template, to start a template of your own.
///
/// Its `variables` are what a deployment's `job_variables` may set; point a
/// deployment's `job_template` at an edited copy to change anything else.
#[derive(Debug, Args)]
pub struct JobTemplateArgs {}

pub(super) fn job_template(_args: JobTemplateArgs) -> Result<ExitCode, CommandError> {
    print!("{BASE_JOB_TEMPLATE}");
    Ok(ExitCode::SUCCESS)
}
