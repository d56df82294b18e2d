//! Applying deployments and creating their runs.

use std::path::Path;
use std::time::SystemTime;

use super::{ArtifactError, ComponentSource, PoolError, Store, StoreError};
use crate::engine::{inspect_flow, inspect_task};
use crate::model::job_template::{JobRun, JobTemplate};
use crate::model::{
    Deployment, DeploymentSpec, FlowRun, Infrastructure, ParameterError, ParameterOrigin, ParameterSchema, Parameters,
    PoolKind, State, StateRecord, TaskComponentRef, WorkPool,
};

/// Why a deployment could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A component could not be had.
    #[error("deployment `{deployment}` ({file} line {line}): {source}")]
    Component {
        /// The deployment.
        deployment: String,
        /// The file.
        file: String,
        /// The line of its `name`.
        line: u64,
        /// What failed.
        source: ArtifactError,
    },
    /// A component is not a usable flow.
    #[error("deployment `{deployment}` ({file} line {line}): {reason}")]
    Invalid {
        /// The deployment.
        deployment: String,
        /// The file.
        file: String,
        /// The line of its `name`.
        line: u64,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Prepares one deployment from a file: pushes its local components
    /// (paths are relative to `base_dir`, the file's folder) and checks its
    /// default parameters against the flow's schema. Nothing is applied
    /// until [`Store::put_deployment`].
    pub async fn prepare_deployment(
        &self,
        spec: &DeploymentSpec,
        file: &str,
        base_dir: &Path,
        options: &[(String, String)],
    ) -> Result<Deployment, DeployError> {
        let name = spec.name.value.clone();
        let line = spec.name.referenced.line();
        let invalid =
            |reason: String| DeployError::Invalid { deployment: name.clone(), file: file.to_owned(), line, reason };
        let component = |reference: &str| {
            let resolved = if Path::new(reference).is_relative()
                && !reference.contains("://")
                && !reference.starts_with("sha256:")
            {
                let joined = base_dir.join(reference);
                if joined.is_file() { joined.display().to_string() } else { reference.to_owned() }
            } else {
                reference.to_owned()
            };
            ComponentSource::parse(&resolved)
        };

        // The pool: the one named, else the default pool of the
        // infrastructure type. Its type decides where runs execute.
        let pool = match &spec.work_pool {
            Some(named) => Some(self.pool_or_suggest(&named.name).await.map_err(|e| match e {
                PoolError::Store(e) => DeployError::Store(e),
                e => invalid(e.to_string()),
            })?),
            None => None,
        };
        let infrastructure = infrastructure(spec, pool.as_ref().map(|(_, p)| p)).map_err(&invalid)?;
        let work_queue = match (spec.work_pool.as_ref().and_then(|p| p.queue.as_ref()), &pool) {
            (Some(queue), Some((_, pool))) if pool.queue(queue).is_none() => {
                let names: Vec<String> = pool.all_queues().into_iter().map(|q| q.name).collect();
                let hint = crate::model::closest(queue, names.iter().map(String::as_str))
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| format!("its queues are {}", names.join(", ")));
                return Err(invalid(format!(
                    "work pool `{}` has no queue `{queue}`: {hint} (`weft pool queue create {} {queue}` adds it)",
                    pool.name, pool.name
                )));
            }
            (Some(queue), _) if queue != crate::model::DEFAULT_QUEUE => Some(queue.clone()),
            _ => None,
        };
        if matches!(infrastructure, Infrastructure::Kubernetes { .. }) && !self.is_cloud() {
            return Err(invalid(format!(
                "it runs on Kubernetes, but the store `{}` is on this machine, where its pods cannot fetch the flow: \
                 deploy to a bucket the cluster can reach, e.g. `weft deploy --store s3://BUCKET/weft` (or gs://, az://); \
                 weft pushes the flow there",
                self.url()
            )));
        }
        let source = component(&spec.flow).map_err(&invalid)?;
        let (bytes, flow) = self.component(&source, options, inspect_flow).await.map_err(|e| match e {
            ArtifactError::Refused(e) => invalid(e.to_string()),
            source => DeployError::Component { deployment: name.clone(), file: file.to_owned(), line, source },
        })?;
        let info = inspect_flow(&bytes, &spec.flow).map_err(|e| invalid(e.to_string()))?;
        let flow_name = info.flow_name.clone().unwrap_or_else(|| name.clone());
        if let Some(schema) = &info.parameters_schema {
            let schema = ParameterSchema::new(schema.clone()).map_err(&invalid)?;
            let scheduled = spec.schedule.iter().any(|s| s.active);
            if let Err(mut error) = schema.validate(&flow_name, &spec.parameters) {
                // Defaults may leave required parameters to each run, unless
                // a schedule makes runs with the defaults alone.
                if !scheduled {
                    error.problems.retain(|p| !p.message.starts_with("is required"));
                }
                if !error.problems.is_empty() {
                    return Err(invalid(describe(&error.from(ParameterOrigin::DeploymentFile))));
                }
            }
        }
        let mut tasks = std::collections::BTreeMap::new();
        for (task, spec_task) in &spec.tasks {
            let source = component(&spec_task.component).map_err(|e| invalid(format!("task `{task}`: {e}")))?;
            // A flow registered as a task would fail every call: it is
            // refused now, before it is stored.
            let (_, digest) = self.component(&source, options, inspect_task).await.map_err(|e| match e {
                ArtifactError::Refused(e) => invalid(format!("task `{task}`: {e}")),
                source => DeployError::Component { deployment: name.clone(), file: file.to_owned(), line, source },
            })?;
            tasks.insert(task.clone(), TaskComponentRef { component: digest, policy: spec_task.policy.clone() });
        }
        let job_template = match &infrastructure {
            Infrastructure::Kubernetes { job_variables, job_template } => {
                let pool_template = pool.as_ref().and_then(|(_, p)| p.base_job_template.as_ref().map(|t| (p, t)));
                let (template, text) = match (job_template, pool_template) {
                    (Some(path), _) => {
                        let full = base_dir.join(path);
                        let text = std::fs::read_to_string(&full)
                            .map_err(|e| invalid(format!("cannot read job template `{}`: {e}", full.display())))?;
                        (JobTemplate::parse(&text, path).map_err(|e| invalid(e.to_string()))?, Some(text))
                    }
                    (None, Some((pool, text))) => {
                        let what = format!("work pool {}", pool.name);
                        (JobTemplate::parse(text, &what).map_err(|e| invalid(e.to_string()))?, None)
                    }
                    (None, None) => (JobTemplate::base(), None),
                };
                // Rendered now, so that a broken template or variable fails
                // the deploy rather than a run hours later.
                self.probe_job(&template, job_variables, &name, &flow_name, spec.sandbox.timeout)
                    .map_err(|e| invalid(e.to_string()))?;
                text
            }
            Infrastructure::Process => None,
        };
        let deployment = Deployment {
            name: name.clone(),
            description: spec.description.clone(),
            flow,
            flow_name,
            parameters_schema: info.parameters_schema,
            parameters: spec.parameters.clone(),
            tasks,
            task_concurrency: spec.task_concurrency,
            schedule: spec.schedule.clone(),
            tags: spec.tags.clone(),
            retries: spec.retries,
            retry_delay: spec.retry_delay,
            concurrency_limit: spec.concurrency_limit,
            sandbox: spec.sandbox.clone(),
            work_pool: spec.work_pool.as_ref().map(|p| p.name.clone()).filter(|p| p != infrastructure.kind()),
            work_queue,
            infrastructure,
            job_template,
            updated: SystemTime::now(),
        };
        Ok(deployment)
    }

    /// Renders a Job for a run that does not exist, to find what is wrong
    /// with a template and its variables before any run needs them.
    fn probe_job(
        &self,
        template: &JobTemplate,
        variables: &std::collections::BTreeMap<String, serde_json::Value>,
        deployment: &str,
        flow: &str,
        timeout: std::time::Duration,
    ) -> Result<(), crate::model::job_template::TemplateError> {
        let probe = JobRun {
            run_id: "01aaaaaaaaaaaaaaaaaaaaaaaa",
            deployment,
            flow,
            store_url: self.url(),
            store_options: &[],
            timeout_secs: timeout.as_secs(),
        };
        template.render(variables, &probe).map(|_| ())
    }

    /// Checks an applied Kubernetes deployment's job variables against the
    /// template its runs get now: its own, or its pool's as the pool is
    /// today (it may have changed since the deploy). Agents' own defaults
    /// are not known here.
    pub async fn check_job(&self, deployment: &Deployment) -> Result<(), String> {
        let Infrastructure::Kubernetes { job_variables, job_template } = &deployment.infrastructure else {
            return Ok(());
        };
        let template = match &deployment.job_template {
            Some(text) => JobTemplate::parse(text, job_template.as_deref().unwrap_or("job template")),
            None => match self.pool(deployment.pool_name()).await.map_err(|e| e.to_string())? {
                Some((_, pool)) => match &pool.base_job_template {
                    Some(text) => JobTemplate::parse(text, &format!("work pool {}", pool.name)),
                    None => Ok(JobTemplate::base()),
                },
                None => return Err(format!("its work pool `{}` does not exist", deployment.pool_name())),
            },
        }
        .map_err(|e| e.to_string())?;
        self.probe_job(&template, job_variables, &deployment.name, &deployment.flow_name, deployment.sandbox.timeout)
            .map_err(|e| e.to_string())
    }

    /// Creates a Scheduled run of a deployment, due at `due`, and queues it.
    /// `parameters` override the deployment's defaults and are checked
    /// against its schema first. With a given `id` (schedules and retries
    /// derive one), the run is created only once however many agents try:
    /// `Ok(None)` when it exists already.
    pub async fn schedule_run(
        &self,
        deployment: &Deployment,
        parameters: Parameters,
        due: SystemTime,
        id: Option<String>,
        attempt: u32,
    ) -> Result<Option<FlowRun>, ScheduleError> {
        let mut merged = deployment.parameters.clone();
        merged.extend(parameters);
        if let Some(schema) = &deployment.parameters_schema {
            let schema = ParameterSchema::new(schema.clone()).map_err(|reason| {
                ScheduleError::Parameters(ParameterError {
                    flow: deployment.flow_name.clone(),
                    problems: vec![crate::model::ParameterProblem::invalid("", reason)],
                    origin: ParameterOrigin::CommandLine,
                })
            })?;
            schema.validate(&deployment.flow_name, &merged).map_err(ScheduleError::Parameters)?;
        }
        let run = FlowRun {
            id: id.unwrap_or_else(crate::model::new_id),
            flow_name: deployment.flow_name.clone(),
            deployment: Some(deployment.name.clone()),
            component: deployment.flow.clone(),
            parameters: merged,
            attempt,
            created: SystemTime::now(),
            scheduled_for: Some(due),
            sandbox: deployment.sandbox.clone(),
            tasks: deployment.tasks.clone(),
            task_concurrency: deployment.task_concurrency,
            work_pool: Some(deployment.pool_name().to_owned()),
            work_queue: Some(deployment.queue_name().to_owned()),
        };
        let path = format!("runs/{}/run.json", run.id);
        let json = serde_json::to_vec(&run).map_err(|e| StoreError::Corrupt {
            url: self.url().to_owned(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        // Indexed first, as in `create_run`.
        self.index_run(&run.id).await?;
        if !self.create(&path, json.into()).await? {
            return Ok(None);
        }
        self.transition(&run.id, |current| current.is_none().then(|| StateRecord::now(State::Scheduled, None))).await?;
        self.enqueue(&run, due).await?;
        Ok(Some(run))
    }
}

/// Where a deployment's runs execute, from its `infrastructure:` and its
/// work pool's type, which must agree.
fn infrastructure(spec: &DeploymentSpec, pool: Option<&WorkPool>) -> Result<Infrastructure, String> {
    let Some(pool) = pool else { return Ok(spec.infrastructure.clone().unwrap_or_default()) };
    let variables = spec.work_pool.as_ref().map(|p| p.job_variables.clone()).unwrap_or_default();
    match (pool.kind, spec.infrastructure.clone()) {
        (PoolKind::Process, None | Some(Infrastructure::Process)) if variables.is_empty() => {
            Ok(Infrastructure::Process)
        }
        (PoolKind::Process, None | Some(Infrastructure::Process)) => Err(format!(
            "work pool `{}` is a process pool, which has no job variables: remove `work_pool.job_variables`",
            pool.name
        )),
        (PoolKind::Kubernetes, None) => Ok(Infrastructure::Kubernetes { job_variables: variables, job_template: None }),
        (PoolKind::Kubernetes, Some(Infrastructure::Kubernetes { job_variables, job_template })) => {
            if !job_variables.is_empty() && !variables.is_empty() {
                return Err("job variables are given both in `infrastructure` and in `work_pool`: keep them in \
                            `work_pool.job_variables`"
                    .to_owned());
            }
            let job_variables = if variables.is_empty() { job_variables } else { variables };
            Ok(Infrastructure::Kubernetes { job_variables, job_template })
        }
        (kind, Some(other)) => Err(format!(
            "`infrastructure: {}` does not match work pool `{}`, a {kind} pool: remove `infrastructure:` (the \
             pool's type decides where runs execute)",
            other.kind(),
            pool.name
        )),
    }
}

/// Why a run could not be scheduled.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The parameters do not pass the flow's schema.
    #[error("{}", describe(.0))]
    Parameters(ParameterError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn describe(error: &ParameterError) -> String {
    error.to_string().replace('\n', "; ")
}
