//! Job templates: the base job template, a deployment's own template file,
//! job variables, and the Job weft builds from them for one flow run. Plain
//! rendering, no I/O: `weft deploy` checks a deployment's template with it
//! and the Kubernetes agent builds its Jobs with it.
//!
//! Placeholders follow Prefect's work-pool templates: `{{ name }}` as a whole
//! value becomes the variable's value, whatever its type; inside a longer
//! string it becomes its text. Substitution happens on the parsed tree, never
//! on YAML text, so no value can change the template's structure.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use serde_json::{Map, Value, json};

/// The base job template, as `weft job-template` prints it.
pub const BASE_JOB_TEMPLATE: &str = include_str!("base-job-template.yaml");

/// Set to `kubernetes` in a Job's flow container: a signal to the runner
/// then interrupts the run, and the agent records why Kubernetes stopped
/// the pod.
pub const INFRASTRUCTURE_ENV: &str = "WEFT_INFRASTRUCTURE";

/// Labels every Job and pod weft makes carries.
pub const RUN_ID_LABEL: &str = "weft.dev/flow-run-id";
/// The deployment label.
pub const DEPLOYMENT_LABEL: &str = "weft.dev/deployment";
/// The flow label.
pub const FLOW_LABEL: &str = "weft.dev/flow";

/// Why a template or its variables cannot make a Job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job template `{template}`: {message}")]
pub struct TemplateError {
    /// The template: `base` or a file name.
    pub template: String,
    /// What is wrong, naming the field or variable, and the fix.
    pub message: String,
}

/// A job template: variables with defaults, and the Job with placeholders.
#[derive(Debug, Clone)]
pub struct JobTemplate {
    name: String,
    defaults: BTreeMap<String, Value>,
    job: Value,
    /// A Prefect work-pool template's variables schema, which the variables
    /// must pass.
    schema: Option<std::sync::Arc<super::ParameterSchema>>,
}

/// What one flow run contributes to its Job.
#[derive(Debug, Clone)]
pub struct JobRun<'a> {
    /// The flow run's id.
    pub run_id: &'a str,
    /// Its deployment.
    pub deployment: &'a str,
    /// Its flow.
    pub flow: &'a str,
    /// The store URL the runner uses.
    pub store_url: &'a str,
    /// Store options the runner needs (no credentials: those come from a Secret).
    pub store_options: &'a [(String, String)],
    /// The deployment's sandbox timeout, in seconds: the Job's default
    /// active deadline is this plus a minute.
    pub timeout_secs: u64,
}

impl JobTemplate {
    /// The base template.
    pub fn base() -> Self {
        // The base template is part of weft; a test parses it.
        Self::parse(BASE_JOB_TEMPLATE, "base").unwrap_or_else(|e| panic!("the base job template is broken: {e}"))
    }

    /// Parses a template: either `variables` and `job` like the base
    /// template, or a plain Job manifest (the base template's variables then
    /// apply to its placeholders).
    pub fn parse(text: &str, name: &str) -> Result<Self, TemplateError> {
        let error = |message: String| TemplateError { template: name.to_owned(), message };
        let document: Value = serde_saphyr::from_str(text).map_err(|e| {
            let position =
                e.location().map(|l| format!("line {} column {}: ", l.line(), l.column())).unwrap_or_default();
            error(format!("{position}{}", e.to_string().lines().next().unwrap_or_default()))
        })?;
        let Value::Object(mut top) = document else {
            return Err(error("expected a mapping: a Job manifest, or `variables` and `job`".into()));
        };
        if top.contains_key("job_configuration") {
            return Self::parse_prefect(top, name);
        }
        // A whole work pool, as `prefect work-pool inspect --output json`
        // prints it: its template is inside.
        if let Some(Value::Object(inner)) = top.get("base_job_template")
            && inner.contains_key("job_configuration")
        {
            return Self::parse_prefect(inner.clone(), name);
        }
        let (variables, job) = match (top.remove("job"), top.get("kind").and_then(Value::as_str)) {
            (Some(job), _) => (top.remove("variables"), job),
            (None, Some("Job")) => (None, Value::Object(top)),
            _ => return Err(error("expected a Job manifest (`kind: Job`), or `variables` and `job`".into())),
        };
        let mut defaults = match name {
            "base" => BTreeMap::new(),
            _ => Self::base().defaults,
        };
        if let Some(variables) = variables {
            let Value::Object(variables) = variables else {
                return Err(error("`variables` must map names to `{default: ..., description: ...}`".into()));
            };
            for (key, spec) in variables {
                let default = match spec {
                    Value::Object(mut spec) => spec.remove("default").unwrap_or(Value::Null),
                    other => other,
                };
                defaults.insert(key, default);
            }
        }
        if job.get("kind").and_then(Value::as_str).is_none_or(|k| k != "Job") {
            return Err(error("`job` must be a Job manifest with `kind: Job`".into()));
        }
        Ok(JobTemplate { name: name.to_owned(), defaults, job, schema: None })
    }

    /// A Prefect 3 work-pool template, as `prefect work-pool inspect` shows
    /// its `base_job_template`: `job_configuration.job_manifest` is the
    /// Job, and `variables` is the JSON Schema of the variables, with
    /// their defaults. A variable without a default keeps weft's, if weft
    /// has one (the image: Prefect's would not hold weft).
    fn parse_prefect(mut top: Map<String, Value>, name: &str) -> Result<Self, TemplateError> {
        let error = |message: String| TemplateError { template: name.to_owned(), message };
        let Some(Value::Object(mut configuration)) = top.remove("job_configuration") else {
            return Err(error("`job_configuration` must be a mapping holding `job_manifest`".into()));
        };
        let job = configuration.remove("job_manifest").ok_or_else(|| {
            error("`job_configuration` has no `job_manifest`: the Job that each flow run becomes".into())
        })?;
        if job.get("kind").and_then(Value::as_str) != Some("Job") {
            return Err(error("`job_configuration.job_manifest` must be a Job manifest with `kind: Job`".into()));
        }
        let schema = top.remove("variables").unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return Err(error("`variables` must be a JSON Schema object with `properties`".into()));
        };
        let mut defaults = Self::base().defaults;
        for (key, spec) in properties {
            match spec.get("default") {
                Some(default) => {
                    defaults.insert(key.clone(), default.clone());
                }
                None => {
                    defaults.entry(key.clone()).or_insert(Value::Null);
                }
            }
        }
        // The worker settings beside the manifest: the one weft has an
        // equivalent for becomes its default.
        let seconds = match configuration.get("pod_watch_timeout_seconds") {
            Some(Value::String(text)) => whole_placeholder(text.trim()).and_then(|v| defaults.get(v)?.as_u64()),
            Some(value) => value.as_u64(),
            None => None,
        };
        if let Some(seconds) = seconds {
            defaults.insert("pod_watch_timeout".into(), json!(seconds));
        }
        let schema = super::ParameterSchema::new(schema)
            .map_err(|e| error(format!("`variables` is not a usable JSON Schema: {e}")))?;
        Ok(JobTemplate { name: name.to_owned(), defaults, job, schema: Some(std::sync::Arc::new(schema)) })
    }

    /// Checks the variables a run's Job gets against the template's schema
    /// (a Prefect work-pool template's `variables`): types, required,
    /// enums. Unset variables (null) are left out, as they are of the Job.
    fn check_variables(&self, values: &BTreeMap<String, Value>) -> Result<(), TemplateError> {
        let Some(schema) = &self.schema else { return Ok(()) };
        let known: Option<&Map<String, Value>> = schema.schema().get("properties").and_then(Value::as_object);
        let set: Map<String, Value> = values
            .iter()
            .filter(|(key, value)| !value.is_null() && known.is_some_and(|k| k.contains_key(*key)))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        schema.validate(&self.name, &set).map_err(|e| {
            let problems: Vec<String> = e
                .problems
                .iter()
                .map(|p| match p.parameter.as_str() {
                    "" => format!("the variables {}", p.message),
                    name => format!("job variable `{name}` {}", p.message),
                })
                .collect();
            self.error(problems.join("; "))
        })
    }

    /// The variables and their defaults.
    pub fn variables(&self) -> &BTreeMap<String, Value> {
        &self.defaults
    }

    fn error(&self, message: String) -> TemplateError {
        TemplateError { template: self.name.clone(), message }
    }

    /// The Job for one flow run: defaults overridden by `variables`,
    /// placeholders filled, weft's parts filled in, and the result checked
    /// against the Kubernetes Job type.
    pub fn render(&self, variables: &BTreeMap<String, Value>, run: &JobRun<'_>) -> Result<Job, TemplateError> {
        let mut values = self.defaults.clone();
        for (key, value) in variables {
            if !self.defaults.contains_key(key) {
                let known: Vec<&str> = self.defaults.keys().map(String::as_str).collect();
                let hint = crate::closest(key, known.iter().copied())
                    .map(|k| format!("did you mean `{k}`?"))
                    .unwrap_or_else(|| format!("the variables are: {}", known.join(", ")));
                return Err(self.error(format!("unknown job variable `{key}`: {hint}")));
            }
            values.insert(key.clone(), value.clone());
        }
        self.check_variables(&values)?;
        if let Some(env) = values.get_mut("env") {
            *env = env_list(env).map_err(|m| self.error(m))?;
        }
        if values.get("active_deadline").is_some_and(Value::is_null) && self.defaults.contains_key("active_deadline") {
            values.insert("active_deadline".into(), json!(run.timeout_secs + 60));
        }
        let explicit_image = variables.contains_key("image");

        let mut job = self.substitute(&self.job, &values, "")?.unwrap_or_else(|| json!({}));
        self.fill(&mut job, &values, explicit_image, run)?;
        if let Some(patch) = values.get("job_patch").filter(|p| !p.is_null()) {
            self.patch(&mut job, patch)?;
        }
        let job: Job = serde_path_to_error::deserialize(job)
            .map_err(|e| self.error(format!("the Job is not valid: `{}`: {}", e.path(), e.inner())))?;
        self.check(&job)?;
        Ok(job)
    }

    /// The node with its placeholders replaced, or `None` where an unset
    /// variable leaves it out: a whole placeholder whose value is null or an
    /// empty map or list, and a map or list that had entries and lost them
    /// all that way. What the template writes empty (`emptyDir: {}`) stays.
    fn substitute(
        &self,
        node: &Value,
        values: &BTreeMap<String, Value>,
        path: &str,
    ) -> Result<Option<Value>, TemplateError> {
        let unset = |v: &Value| {
            v.is_null() || v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty)
        };
        Ok(Some(match node {
            Value::String(text) => {
                let trimmed = text.trim();
                if let Some(name) = whole_placeholder(trimmed) {
                    let value = self.lookup(values, name, path)?;
                    if unset(value) {
                        return Ok(None);
                    }
                    value.clone()
                } else if text.contains("{{") {
                    let mut out = String::new();
                    let mut rest = text.as_str();
                    while let Some(start) = rest.find("{{") {
                        let Some(end) = rest[start..].find("}}") else { break };
                        out.push_str(&rest[..start]);
                        let name = rest[start + 2..start + end].trim();
                        match self.lookup(values, name, path)? {
                            Value::String(s) => out.push_str(s),
                            Value::Null => {}
                            other => out.push_str(&other.to_string()),
                        }
                        rest = &rest[start + end + 2..];
                    }
                    out.push_str(rest);
                    Value::String(out)
                } else {
                    node.clone()
                }
            }
            Value::Array(items) => {
                let mut kept = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    kept.extend(self.substitute(item, values, &format!("{path}[{i}]"))?);
                }
                if kept.is_empty() && !items.is_empty() {
                    return Ok(None);
                }
                Value::Array(kept)
            }
            Value::Object(map) => {
                let mut kept = Map::new();
                for (key, value) in map {
                    if let Some(value) = self.substitute(value, values, &format!("{path}.{key}"))? {
                        kept.insert(key.clone(), value);
                    }
                }
                if kept.is_empty() && !map.is_empty() {
                    return Ok(None);
                }
                Value::Object(kept)
            }
            other => other.clone(),
        }))
    }

    fn lookup<'v>(
        &self,
        values: &'v BTreeMap<String, Value>,
        name: &str,
        path: &str,
    ) -> Result<&'v Value, TemplateError> {
        values.get(name).ok_or_else(|| {
            self.error(format!(
                "`{}` uses `{{{{ {name} }}}}`, which is not a variable; add it under `variables` or use one of: {}",
                path.trim_start_matches('.'),
                values.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// weft's parts: name, labels, the flow container's image, command and
    /// environment.
    fn fill(
        &self,
        job: &mut Value,
        values: &BTreeMap<String, Value>,
        explicit_image: bool,
        run: &JobRun<'_>,
    ) -> Result<(), TemplateError> {
        let labels = [
            (RUN_ID_LABEL, label_value(run.run_id)),
            (DEPLOYMENT_LABEL, label_value(run.deployment)),
            (FLOW_LABEL, label_value(run.flow)),
        ];
        let Some(root) = job.as_object_mut() else { return Err(self.error("the Job is not a mapping".into())) };
        let metadata = object_at(root, "metadata");
        metadata.insert("name".into(), json!(job_name(run.deployment, run.run_id)));
        metadata.remove("generateName");
        let job_labels = object_at(metadata, "labels");
        for (key, value) in &labels {
            job_labels.insert((*key).into(), json!(value));
        }
        let spec = object_at(root, "spec");
        let template = object_at(spec, "template");
        let pod_labels = object_at(object_at(template, "metadata"), "labels");
        for (key, value) in &labels {
            pod_labels.insert((*key).into(), json!(value));
        }
        let pod = object_at(template, "spec");
        let containers = pod.get_mut("containers").and_then(Value::as_array_mut);
        let Some(flow) = containers.and_then(|c| c.first_mut()).and_then(Value::as_object_mut) else {
            return Err(self.error(
                "`spec.template.spec.containers` is empty: the first container runs the flow; add one with a `name`"
                    .into(),
            ));
        };
        if explicit_image || !flow.get("image").is_some_and(Value::is_string) {
            let image = values.get("image").and_then(Value::as_str).unwrap_or_default();
            flow.insert("image".into(), json!(image));
        }
        flow.insert("command".into(), json!(["weft", "runner", "--run", run.run_id]));
        flow.remove("args");
        let mut env: Vec<Value> = flow.remove("env").and_then(|e| e.as_array().cloned()).unwrap_or_default();
        let options: BTreeMap<&str, &str> = run.store_options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut ours = vec![
            ("WEFT_STORE", run.store_url.to_owned()),
            ("WEFT_RUN_ID", run.run_id.to_owned()),
            (INFRASTRUCTURE_ENV, "kubernetes".to_owned()),
        ];
        if !options.is_empty() {
            ours.push(("WEFT_STORE_OPTIONS", serde_json::to_string(&options).unwrap_or_default()));
        }
        env.retain(|e| !ours.iter().any(|(name, _)| e.get("name").and_then(Value::as_str) == Some(name)));
        env.extend(ours.into_iter().map(|(name, value)| json!({"name": name, "value": value})));
        flow.insert("env".into(), Value::Array(env));
        if let Some(secret) = values.get("store_secret").and_then(Value::as_str) {
            let env_from = flow.entry("envFrom").or_insert_with(|| json!([]));
            if let Some(list) = env_from.as_array_mut() {
                list.push(json!({"secretRef": {"name": secret}}));
            }
        }
        Ok(())
    }

    /// Applies the job variable `job_patch`, an RFC 6902 JSON Patch (as
    /// Prefect 2's `customizations`), to the rendered Job.
    fn patch(&self, job: &mut Value, patch: &Value) -> Result<(), TemplateError> {
        let patch: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
            self.error(format!(
                "job variable `job_patch` is not a JSON Patch ({e}): write a list of operations such as \
                 [{{op: add, path: /spec/template/spec/priorityClassName, value: high}}]"
            ))
        })?;
        json_patch::patch(job, &patch).map_err(|e| {
            let operation = patch.0.get(e.operation).map(|op| format!(" (`{op}`)")).unwrap_or_default();
            self.error(format!("job variable `job_patch`: operation {}{operation}: {}", e.operation + 1, e.kind))
        })
    }

    fn check(&self, job: &Job) -> Result<(), TemplateError> {
        let spec = job.spec.as_ref().ok_or_else(|| self.error("the Job has no `spec`".into()))?;
        let pod = spec.template.spec.as_ref().ok_or_else(|| self.error("`spec.template.spec` is missing".into()))?;
        if let Some(namespace) = &job.metadata.namespace
            && !dns_label(namespace)
        {
            return Err(self.error(format!(
                "`metadata.namespace` `{namespace}` is not a valid namespace: lowercase letters, digits and `-`, 63 at most"
            )));
        }
        match pod.restart_policy.as_deref() {
            Some("Never" | "OnFailure") => {}
            other => {
                return Err(self.error(format!(
                    "`spec.template.spec.restartPolicy` is {other:?}: a Job's pods need `Never` (weft retries flow runs itself)"
                )));
            }
        }
        for (i, container) in pod.containers.iter().enumerate() {
            for (kind, quantities) in container
                .resources
                .iter()
                .flat_map(|r| [("requests", r.requests.as_ref()), ("limits", r.limits.as_ref())])
            {
                for (resource, quantity) in quantities.into_iter().flatten() {
                    if !quantity_valid(&quantity.0) {
                        return Err(self.error(format!(
                            "`spec.template.spec.containers[{i}].resources.{kind}.{resource}` is `{}`, not a quantity: write e.g. 500m, 2, 256Mi or 1Gi",
                            quantity.0
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `{{ name }}`, alone: the name.
fn whole_placeholder(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    (!inner.is_empty() && !inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}

fn object_at<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let entry = map.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry {
        Value::Object(inner) => inner,
        _ => unreachable!("just made an object"),
    }
}

/// `env` as Kubernetes writes it: a map of names to values becomes a list.
fn env_list(env: &Value) -> Result<Value, String> {
    match env {
        Value::Object(map) => Ok(Value::Array(
            map.iter()
                .map(|(name, value)| {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    json!({"name": name, "value": text})
                })
                .collect(),
        )),
        Value::Array(_) | Value::Null => Ok(env.clone()),
        other => Err(format!("job variable `env` must map names to values, got {other}")),
    }
}

/// A DNS-1123 label: the Job's name, from the deployment and the run id.
pub fn job_name(deployment: &str, run_id: &str) -> String {
    let clean = |s: &str| -> String {
        s.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
    };
    let id = clean(run_id);
    let budget = 63 - "weft--".len() - id.len();
    let deployment: String = clean(deployment).chars().take(budget).collect();
    let deployment = deployment.trim_matches('-');
    if deployment.is_empty() { format!("weft-{id}") } else { format!("weft-{deployment}-{id}") }
}

/// A label value: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
pub fn label_value(text: &str) -> String {
    let mapped: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).take(63).collect();
    mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned()
}

fn dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// A Kubernetes quantity: a number with an optional suffix (`500m`, `1.5`,
/// `256Mi`, `1e3`).
fn quantity_valid(text: &str) -> bool {
    let suffixes = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E", ""];
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    suffixes.iter().any(|suffix| {
        body.strip_suffix(suffix).is_some_and(|number| {
            let (mantissa, exponent) = match number.split_once(['e', 'E']) {
                Some((m, e)) if suffix.is_empty() => (m, Some(e)),
                _ => (number, None),
            };
            let digits_ok = !mantissa.is_empty()
                && mantissa.bytes().filter(|b| *b == b'.').count() <= 1
                && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && mantissa.bytes().any(|b| b.is_ascii_digit());
            digits_ok && exponent.is_none_or(|e| e.strip_prefix(['+', '-']).unwrap_or(e).parse::<u32>().is_ok())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> JobRun<'static> {
        JobRun {
            run_id: "01M81MC84G4B0SKYW09WM6AX4G",
            deployment: "etl_daily",
            flow: "etl",
            store_url: "s3://bucket/weft",
            store_options: &[],
            timeout_secs: 600,
        }
    }

    fn vars(value: Value) -> BTreeMap<String, Value> {
        value.as_object().map(|m| m.clone().into_iter().collect()).unwrap_or_default()
    }

    /// Prefect 3's default Kubernetes work-pool template, with a
    /// `cpu_request` variable placed into the container's resources.
    const PREFECT: &str = include_str!("../../../tests/all/kubernetes/prefect-work-pool.json");

    #[test]
    fn a_prefect_work_pool_template_renders_as_is_with_its_schema_enforced() {
        let template = JobTemplate::parse(PREFECT, "work pool gpu").expect("parses");
        let inspected = format!(r#"{{"name": "gpu", "type": "kubernetes", "base_job_template": {PREFECT}}}"#);
        let whole = JobTemplate::parse(&inspected, "work pool gpu").expect("a whole work pool parses");
        assert_eq!(whole.variables(), template.variables());
        assert_eq!(template.variables()["pod_watch_timeout"], 60, "Prefect's pod watch timeout");
        let job = template.render(&vars(json!({"cpu_request": "250m", "labels": {"team": "data"}})), &run());
        let value = serde_json::to_value(job.expect("renders")).expect("json");
        assert_eq!(value["metadata"]["name"], "weft-etl-daily-01m81mc84g4b0skyw09wm6ax4g");
        assert!(value["metadata"].get("generateName").is_none(), "weft names the Job");
        assert_eq!(value["metadata"]["labels"]["team"], "data");
        let container = &value["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["name"], "prefect-job");
        assert_eq!(container["image"], "ghcr.io/weft-dev/weft:0.1.0", "weft's image: Prefect's has no default");
        assert_eq!(container["resources"]["requests"]["cpu"], "250m");
        assert!(container.get("args").is_none(), "weft's command replaces Prefect's");
        assert_eq!(value["spec"]["ttlSecondsAfterFinished"], 3600, "weft's default where Prefect has none");
        let pod = &value["spec"]["template"]["spec"];
        assert!(pod.get("serviceAccountName").is_none(), "unset variables leave their keys out");

        let error = |variables: Value| template.render(&vars(variables), &run()).expect_err("refused").to_string();
        let e = error(json!({"image_pull_policy": "Sometimes"}));
        assert!(e.contains("job variable `image_pull_policy`") && e.contains("Sometimes"), "{e}");
        let e = error(json!({"finished_job_ttl": "an hour"}));
        assert!(e.contains("job variable `finished_job_ttl`"), "{e}");
        let e = error(json!({"cpu_request": "lots"}));
        assert!(e.contains("job variable `cpu_request`"), "{e}");
        let e = error(json!({"cpu_requst": "1"}));
        assert!(e.contains("unknown job variable `cpu_requst`: did you mean `cpu_request`?"), "{e}");
    }

    #[test]
    fn job_patch_is_applied_after_rendering_and_checked() {
        let patch = json!([
            {"op": "add", "path": "/spec/template/spec/priorityClassName", "value": "high"},
            {"op": "replace", "path": "/spec/backoffLimit", "value": 2},
        ]);
        let job = JobTemplate::base().render(&vars(json!({"job_patch": patch})), &run()).expect("renders");
        let value = serde_json::to_value(job).expect("json");
        assert_eq!(value["spec"]["template"]["spec"]["priorityClassName"], "high");
        assert_eq!(value["spec"]["backoffLimit"], 2);

        let error = |patch: Value| {
            JobTemplate::base().render(&vars(json!({"job_patch": patch})), &run()).expect_err("refused").to_string()
        };
        let e = error(json!([{"op": "remove", "path": "/spec/nothing"}]));
        assert!(e.contains("job variable `job_patch`: operation 1"), "{e}");
        let e = error(json!({"op": "add"}));
        assert!(e.contains("is not a JSON Patch"), "{e}");
        let e = error(json!([{"op": "add", "path": "/spec/template/spec/restartPolicy", "value": "Always"}]));
        assert!(e.contains("restartPolicy"), "the patched Job is checked: {e}");
    }

    #[test]
    fn the_base_template_renders_a_job_with_weft_parts() {
        let job = JobTemplate::base().render(&BTreeMap::new(), &run()).expect("renders");
        let value = serde_json::to_value(&job).expect("json");
        assert_eq!(value["metadata"]["name"], "weft-etl-daily-01m81mc84g4b0skyw09wm6ax4g");
        assert_eq!(value["metadata"]["namespace"], "default");
        assert_eq!(value["metadata"]["labels"][RUN_ID_LABEL], "01M81MC84G4B0SKYW09WM6AX4G");
        assert_eq!(value["spec"]["template"]["metadata"]["labels"][DEPLOYMENT_LABEL], "etl_daily");
        assert_eq!(value["spec"]["backoffLimit"], 0);
        assert_eq!(value["spec"]["activeDeadlineSeconds"], 660);
        let container = &value["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["command"], json!(["weft", "runner", "--run", "01M81MC84G4B0SKYW09WM6AX4G"]));
        assert_eq!(container["env"][0], json!({"name": "WEFT_STORE", "value": "s3://bucket/weft"}));
        assert!(container.get("resources").is_none(), "unset resources are left out: {container}");
        assert!(value["spec"]["template"]["spec"].get("serviceAccountName").is_none());
    }

    #[test]
    fn variables_fill_placeholders_with_their_types() {
        let variables = vars(json!({
            "namespace": "flows",
            "image": "registry.example.com/weft:1",
            "env": {"MODE": "prod", "N": 3},
            "memory_limit": "1Gi",
            "labels": {"team": "data"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "store_secret": "weft-store",
        }));
        let value =
            serde_json::to_value(JobTemplate::base().render(&variables, &run()).expect("renders")).expect("json");
        let pod = &value["spec"]["template"]["spec"];
        assert_eq!(value["metadata"]["namespace"], "flows");
        assert_eq!(value["metadata"]["labels"]["team"], "data");
        assert_eq!(pod["tolerations"][0]["key"], "gpu");
        let container = &pod["containers"][0];
        assert_eq!(container["image"], "registry.example.com/weft:1");
        assert_eq!(container["resources"]["limits"]["memory"], "1Gi");
        assert_eq!(container["env"][0], json!({"name": "MODE", "value": "prod"}));
        assert_eq!(container["env"][1], json!({"name": "N", "value": "3"}));
        assert_eq!(container["envFrom"][0]["secretRef"]["name"], "weft-store");
    }

    #[test]
    fn bad_variables_and_templates_name_the_field_and_the_fix() {
        let error = JobTemplate::base().render(&vars(json!({"namepsace": "x"})), &run()).expect_err("typo");
        assert!(error.message.contains("unknown job variable `namepsace`: did you mean `namespace`?"), "{error}");
        let error = JobTemplate::base().render(&vars(json!({"memory_limit": "lots"})), &run()).expect_err("quantity");
        assert!(error.message.contains("resources.limits.memory` is `lots`, not a quantity"), "{error}");
        let error = JobTemplate::base().render(&vars(json!({"namespace": "Flows_1"})), &run()).expect_err("namespace");
        assert!(error.message.contains("is not a valid namespace"), "{error}");
        let error = JobTemplate::base().render(&vars(json!({"backoff_limit": "many"})), &run()).expect_err("type");
        assert!(error.message.contains("`spec.backoffLimit`"), "{error}");

        let custom = "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: []\n";
        let error = JobTemplate::parse(custom, "job.yaml")
            .expect("parses")
            .render(&BTreeMap::new(), &run())
            .expect_err("no container");
        assert!(
            error.to_string().starts_with("job template `job.yaml`: `spec.template.spec.containers` is empty"),
            "{error}"
        );
        let custom = "apiVersion: batch/v1\nkind: Job\nmetadata: {labels: {x: \"{{ nope }}\"}}\n";
        let error = JobTemplate::parse(custom, "job.yaml")
            .expect("parses")
            .render(&BTreeMap::new(), &run())
            .expect_err("unknown");
        assert!(error.message.contains("`metadata.labels.x` uses `{{ nope }}`, which is not a variable"), "{error}");
    }

    #[test]
    fn a_custom_template_keeps_everything_but_weft_parts() {
        let custom = r#"
apiVersion: batch/v1
kind: Job
metadata:
  namespace: "{{ namespace }}"
  annotations: {owner: "team-{{ namespace }}"}
spec:
  template:
    spec:
      restartPolicy: Never
      priorityClassName: batch-low
      securityContext: {}
      volumes:
        - name: scratch
          emptyDir: {}
      containers:
        - name: flow
          image: my/weft:custom
          args: [ignored]
        - name: sidecar
          image: envoy
          resources:
            limits: {memory: "{{ memory_limit }}"}
"#;
        let template = JobTemplate::parse(custom, "job.yaml").expect("parses");
        let value = serde_json::to_value(template.render(&vars(json!({"namespace": "etl"})), &run()).expect("renders"))
            .expect("json");
        assert_eq!(value["metadata"]["annotations"]["owner"], "team-etl");
        let pod = &value["spec"]["template"]["spec"];
        assert_eq!(pod["priorityClassName"], "batch-low");
        assert_eq!(
            pod["containers"][0]["image"], "my/weft:custom",
            "the template's image stays unless a variable sets one"
        );
        assert!(pod["containers"][0].get("args").is_none());
        assert_eq!(pod["containers"][1]["image"], "envoy");
        // Written empty, kept; emptied by an unset variable, left out.
        assert_eq!(pod["volumes"][0], json!({"name": "scratch", "emptyDir": {}}));
        assert_eq!(pod["securityContext"], json!({}));
        assert!(pod["containers"][1].get("resources").is_none(), "{}", pod["containers"][1]);
    }

    #[test]
    fn names_labels_and_quantities() {
        assert_eq!(job_name(&"x".repeat(80), "01M81MC84G4B0SKYW09WM6AX4G").len(), 63);
        assert_eq!(label_value("my flow!"), "my_flow");
        for ok in ["500m", "2", "1.5", "256Mi", "1Gi", "1e3", "0.5"] {
            assert!(quantity_valid(ok), "{ok}");
        }
        for bad in ["lots", "1GB", "", "Mi", "1.2.3"] {
            assert!(!quantity_valid(bad), "{bad}");
        }
    }
}
