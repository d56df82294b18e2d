//! What the real server does to a Job between decoding and storing it: the
//! quantity parsing of decoding (400), defaulting (selector, `job-name`
//! labels, pod-spec defaults) and the validation that turns a bad one into
//! 422 Invalid. Only the checks a client is likely to trip are here.

use serde_json::{Map, Value, json};

use crate::behaviour::{BEHAVIOUR_ANNOTATION, Behaviour};
use crate::image;
use crate::quantity;
use crate::status::FieldError;
use crate::util;

const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(is_dns1123_label)
}

/// Alphanumeric at both ends, alphanumeric or `-_.` between.
fn is_qualified_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// `metadata.name` of any object: a DNS-1123 subdomain of at most 253.
pub(crate) fn validate_name(name: &str, errors: &mut Vec<FieldError>) {
    if name.len() > 253 {
        errors.push(FieldError::invalid("metadata.name", name, "must be no more than 253 characters"));
    }
    if !is_dns1123_subdomain(name) {
        errors.push(FieldError::invalid("metadata.name", name, DNS1123_SUBDOMAIN));
    }
}

/// A label map's keys and values, reported at `field`.
fn validate_labels(labels: Option<&Value>, field: &str, errors: &mut Vec<FieldError>) {
    let Some(Value::Object(labels)) = labels else { return };
    for (key, value) in labels {
        let name = key.rsplit_once('/').map_or(key.as_str(), |(prefix, name)| {
            if prefix.len() > 253 || !is_dns1123_subdomain(prefix) {
                errors.push(FieldError::invalid(field, key, &format!("prefix part {DNS1123_SUBDOMAIN}")));
            }
            name
        });
        if name.len() > 63 {
            errors.push(FieldError::invalid(field, key, "name part must be no more than 63 characters"));
        }
        if !is_qualified_part(name) {
            errors.push(FieldError::invalid(field, key, QUALIFIED_NAME));
        }
        let value = value.as_str().unwrap_or_default();
        if value.len() > 63 {
            errors.push(FieldError::invalid(field, value, "must be no more than 63 characters"));
        }
        if !value.is_empty() && !is_qualified_part(value) {
            errors.push(FieldError::invalid(field, value, LABEL_VALUE));
        }
    }
}

/// Fills what the real server fills in a new Job: `spec` defaults, the
/// generated selector and the `controller-uid`/`job-name` labels on the
/// pod template, the pod-spec defaults, and an empty status. `uid` is the
/// uid the Job will be stored with.
pub(crate) fn default_job(job: &mut Value, name: &str, uid: &str) {
    let template_labels: Option<Value> = job.pointer("/spec/template/metadata/labels").cloned();
    let meta = util::metadata(job);
    if meta.get("labels").is_none_or(|l| l.as_object().is_none_or(Map::is_empty))
        && let Some(labels) = template_labels.filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
    {
        meta.insert("labels".into(), labels);
    }
    let spec = util::child(job, "spec");
    for (key, value) in [
        ("parallelism", json!(1)),
        ("completions", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
    ] {
        spec.entry(key).or_insert(value);
    }
    let generated = [
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
        ("controller-uid", uid),
        ("job-name", name),
    ];
    spec.insert("selector".into(), json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}));
    let template = spec.entry("template").or_insert_with(|| json!({}));
    let labels = util::metadata(template).entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    if let Value::Object(labels) = labels {
        for (key, value) in generated {
            labels.insert(key.into(), json!(value));
        }
    }
    default_pod_spec(util::child(template, "spec"));
    util::status(job);
}

/// The defaults the real server gives a pod spec.
fn default_pod_spec(spec: &mut Map<String, Value>) {
    for (key, value) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("securityContext", json!({})),
        ("schedulerName", json!("default-scheduler")),
    ] {
        spec.entry(key).or_insert(value);
    }
    if let Some(Value::Array(containers)) = spec.get_mut("containers") {
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let pull = image::default_pull_policy(container.get("image").and_then(Value::as_str).unwrap_or_default());
            for (key, value) in [
                ("terminationMessagePath", json!("/dev/termination-log")),
                ("terminationMessagePolicy", json!("File")),
                ("imagePullPolicy", json!(pull)),
                ("resources", json!({})),
            ] {
                container.entry(key).or_insert(value);
            }
        }
    }
}

/// `(field, resource name, quantity)` of every container resource
/// quantity of a Job's pod template:
/// `("spec.template.spec.containers[0].resources.limits", "memory", "64Mi")`.
fn container_quantities(job: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for list in ["containers", "initContainers"] {
        let containers = job.pointer(&format!("/spec/template/spec/{list}")).and_then(Value::as_array);
        for (i, container) in containers.into_iter().flatten().enumerate() {
            for kind in ["limits", "requests"] {
                let Some(Value::Object(quantities)) = container.pointer(&format!("/resources/{kind}")) else {
                    continue;
                };
                for (name, value) in quantities {
                    let text = match value {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    found.push((format!("spec.template.spec.{list}[{i}].resources.{kind}"), name.clone(), text));
                }
            }
        }
    }
    found
}

/// The quantity parsing the real server does while decoding a Job: `Err`
/// is the parser's message, which the server answers with 400 (`Job in
/// version "v1" cannot be handled as a Job: quantities must match ...`),
/// before any validation and without naming the field.
pub(crate) fn parse_quantities(job: &Value) -> Result<(), &'static str> {
    container_quantities(job).iter().try_for_each(|(_, _, text)| quantity::parse(text).map(|_| ()))
}

/// Checks a defaulted Job the way the real server's validation would.
pub(crate) fn validate_job(job: &Value, name: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_name(name, &mut errors);
    validate_labels(job.pointer("/metadata/labels"), "metadata.labels", &mut errors);
    validate_labels(job.pointer("/spec/template/metadata/labels"), "spec.template.labels", &mut errors);
    let containers = job.pointer("/spec/template/spec/containers").and_then(Value::as_array);
    match containers {
        None => errors.push(FieldError::required("spec.template.spec.containers", "")),
        Some(list) if list.is_empty() => errors.push(FieldError::required("spec.template.spec.containers", "")),
        Some(list) => {
            for (i, container) in list.iter().enumerate() {
                let field = format!("spec.template.spec.containers[{i}]");
                match util::str_at(container, "/name") {
                    None | Some("") => errors.push(FieldError::required(format!("{field}.name"), "")),
                    Some(name) if name.len() > 63 || !is_dns1123_label(name) => {
                        let detail = if name.len() > 63 { "must be no more than 63 characters" } else { DNS1123_LABEL };
                        errors.push(FieldError::invalid(format!("{field}.name"), name, detail));
                    }
                    Some(_) => {}
                }
                if util::str_at(container, "/image").is_none_or(|i| i.trim().is_empty()) {
                    errors.push(FieldError::required(format!("{field}.image"), ""));
                }
                if let Some(policy) = util::str_at(container, "/imagePullPolicy")
                    && !["Always", "IfNotPresent", "Never"].contains(&policy)
                {
                    errors.push(FieldError::not_supported(
                        format!("{field}.imagePullPolicy"),
                        policy,
                        vec!["Always", "IfNotPresent", "Never"],
                    ));
                }
            }
        }
    }
    for (field, name, text) in container_quantities(job) {
        if quantity::parse(&text).is_ok_and(|value| value < 0.0) {
            // The real message shows the quantity in canonical form; a
            // negative one is usually written that way already.
            let field = format!("{field}[{name}]");
            errors.push(FieldError::invalid(field, &text, "must be greater than or equal to 0"));
        }
    }
    let restart = util::str_at(job, "/spec/template/spec/restartPolicy").unwrap_or("Always");
    if restart != "OnFailure" && restart != "Never" {
        errors.push(FieldError::not_supported("spec.template.spec.restartPolicy", restart, vec!["OnFailure", "Never"]));
    }
    for field in ["backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"] {
        if let Some(value) = job.pointer(&format!("/spec/{field}")).and_then(Value::as_i64) {
            let (ok, detail) = match field {
                "activeDeadlineSeconds" => (value > 0, "must be greater than 0"),
                _ => (value >= 0, "must be greater than or equal to 0"),
            };
            if !ok {
                errors.push(FieldError {
                    field: format!("spec.{field}"),
                    kind: crate::status::FieldErrorKind::Invalid(value.to_string()),
                    detail: detail.to_owned(),
                });
            }
        }
    }
    let annotation = format!("/spec/template/metadata/annotations/{}", BEHAVIOUR_ANNOTATION.replace('/', "~1"));
    if let Some(text) = job.pointer(&annotation).and_then(Value::as_str)
        && let Err(unknown) = text.parse::<Behaviour>()
    {
        // Not a real-server check: a typo in a test hook should fail loudly.
        errors.push(FieldError::invalid(
            format!("spec.template.annotations[{BEHAVIOUR_ANNOTATION}]"),
            text,
            &unknown.to_string(),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc_1123() {
        assert!(is_dns1123_subdomain("flow-run.abc-1"));
        assert!(!is_dns1123_subdomain("Flow"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(is_dns1123_label("c1"));
        assert!(!is_dns1123_label("c.1"));
    }

    #[test]
    fn a_long_job_name_fails_on_the_job_name_label() {
        let name = "a".repeat(64);
        let mut job = json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
        default_job(&mut job, &name, "uid-1");
        let errors = validate_job(&job, &name);
        let messages: Vec<String> = errors.iter().map(|e| format!("{}: {:?}", e.field, e.kind)).collect();
        assert!(errors.iter().all(|e| e.field == "spec.template.labels"), "{messages:?}");
        assert!(!errors.is_empty());
    }

    #[test]
    fn quantities_fail_at_decoding_or_validation_as_on_a_real_server() {
        let job = |memory: &str| {
            let mut job = json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "busybox:1.36", "resources": {"limits": {"memory": memory}}}
            ]}}}});
            default_job(&mut job, "j", "u");
            job
        };
        assert_eq!(parse_quantities(&job("64Mi")), Ok(()));
        assert_eq!(parse_quantities(&job("lots")), Err(quantity::FORMAT_WRONG));
        let errors = validate_job(&job("-64Mi"), "j");
        assert_eq!(
            errors,
            vec![FieldError::invalid(
                "spec.template.spec.containers[0].resources.limits[memory]",
                "-64Mi",
                "must be greater than or equal to 0"
            )]
        );
        assert_eq!(util::str_at(&job("1Gi"), "/spec/template/spec/containers/0/imagePullPolicy"), Some("IfNotPresent"));
    }

    #[test]
    fn defaults_add_the_job_labels_and_always_restart() {
        let mut job = json!({"spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}}});
        default_job(&mut job, "j", "u");
        assert_eq!(util::str_at(&job, "/spec/template/metadata/labels/job-name"), Some("j"));
        assert_eq!(util::str_at(&job, "/metadata/labels/app"), Some("x"));
        assert_eq!(util::str_at(&job, "/spec/template/spec/restartPolicy"), Some("Always"));
        let errors = validate_job(&job, "j");
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
