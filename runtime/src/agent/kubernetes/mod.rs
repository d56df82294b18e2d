//! The `kubernetes` infrastructure: one Job per flow run, made from a job
//! template and the deployment's job variables.

mod diagnose;
mod infra;
mod install;
mod metered;
mod watch;

pub use diagnose::{Verdict, diagnose};

pub use crate::model::job_template::{
    BASE_JOB_TEMPLATE, DEPLOYMENT_LABEL, FLOW_LABEL, JobRun, JobTemplate, RUN_ID_LABEL, TemplateError, job_name,
    label_value,
};
pub use infra::{KubeHandle, KubernetesInfrastructure, RateLimit, explain, is_credential};
pub use install::{AGENT_NAME, AGENT_RULES, InstallOptions, METRICS_PORT, install_manifests};
pub use metered::Metered;
