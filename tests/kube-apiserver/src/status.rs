//! `Status` failure bodies, worded as the real API server words them
//! (`jobs.batch "x" not found`, `Job.batch "x" is invalid: ...`).

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use crate::resource::Resource;

/// One field error of a 422 Invalid answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldErrorKind {
    Required,
    /// The offending value, already rendered as Go's `%q` (strings) or `%d`.
    Invalid(String),
    NotSupported {
        value: String,
        supported: Vec<&'static str>,
    },
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        FieldError { field: field.into(), kind: FieldErrorKind::Required, detail: detail.to_owned() }
    }

    pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Self {
        FieldError { field: field.into(), kind: FieldErrorKind::Invalid(quote(value)), detail: detail.to_owned() }
    }

    pub fn not_supported(field: impl Into<String>, value: &str, supported: Vec<&'static str>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotSupported { value: value.to_owned(), supported },
            detail: String::new(),
        }
    }

    /// The cause reason, as in `details.causes[].reason`.
    fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid(_) => "FieldValueInvalid",
            FieldErrorKind::NotSupported { .. } => "FieldValueNotSupported",
        }
    }

    /// The error without its field: `Required value`, `Invalid value: "x": detail`.
    fn body(&self) -> String {
        let mut body = match &self.kind {
            FieldErrorKind::Required => "Required value".to_owned(),
            FieldErrorKind::Invalid(value) => format!("Invalid value: {value}"),
            FieldErrorKind::NotSupported { value, supported } => {
                let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
                format!("Unsupported value: {}: supported values: {}", quote(value), list.join(", "))
            }
        };
        if !self.detail.is_empty() {
            body.push_str(": ");
            body.push_str(&self.detail);
        }
        body
    }

    fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }
}

/// Go's `%q` for the plain strings that reach these messages.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A failure the server answers with: an HTTP status and a `Status` body.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: String, details: Option<Value>) -> Self {
        ApiError { code, reason, message, details }
    }

    fn resource_details(resource: Resource, name: Option<&str>) -> Value {
        let mut details = Map::new();
        if let Some(name) = name {
            details.insert("name".into(), json!(name));
        }
        if !resource.group().is_empty() {
            details.insert("group".into(), json!(resource.group()));
        }
        details.insert("kind".into(), json!(resource.plural()));
        Value::Object(details)
    }

    pub fn not_found(resource: Resource, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", resource.qualified());
        Self::new(StatusCode::NOT_FOUND, "NotFound", message, Some(Self::resource_details(resource, Some(name))))
    }

    pub fn already_exists(resource: Resource, name: &str) -> Self {
        let message = format!("{} \"{name}\" already exists", resource.qualified());
        Self::new(StatusCode::CONFLICT, "AlreadyExists", message, Some(Self::resource_details(resource, Some(name))))
    }

    /// 403 with the authorizer's wording; `resource` may name a
    /// subresource (`pods/log`).
    pub fn forbidden(
        resource: Resource,
        subresource: Option<&str>,
        name: Option<&str>,
        verb: &str,
        user: &str,
        namespace: Option<&str>,
    ) -> Self {
        let subject = match name {
            Some(name) => format!("{} \"{name}\"", resource.qualified()),
            None => resource.qualified(),
        };
        let full = match subresource {
            Some(sub) => format!("{}/{sub}", resource.plural()),
            None => resource.plural().to_owned(),
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        };
        let message = format!(
            "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{full}\" in API group \"{}\" {scope}",
            resource.group()
        );
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message, Some(Self::resource_details(resource, name)))
    }

    pub fn invalid(resource: Resource, name: &str, errors: &[FieldError]) -> Self {
        let mut messages: Vec<String> = Vec::new();
        for error in errors {
            let message = error.message();
            if !messages.contains(&message) {
                messages.push(message);
            }
        }
        let joined = match messages.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let message = format!("{} \"{name}\" is invalid: {joined}", resource.qualified_kind());
        let causes: Vec<Value> =
            errors.iter().map(|e| json!({"reason": e.reason(), "message": e.body(), "field": e.field})).collect();
        let mut details = Map::new();
        details.insert("name".into(), json!(name));
        if !resource.group().is_empty() {
            details.insert("group".into(), json!(resource.group()));
        }
        details.insert("kind".into(), json!(resource.kind()));
        details.insert("causes".into(), Value::Array(causes));
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message, Some(Value::Object(details)))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message.into(), None)
    }

    /// A path this server does not serve.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".to_owned(),
            Some(json!({})),
        )
    }

    pub fn method_not_allowed(resource: Resource) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".to_owned(),
            Some(Self::resource_details(resource, None)),
        )
    }

    /// What a watch stream carries when its resourceVersion fell out of
    /// the history: `too old resource version: X (Y)`.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(StatusCode::GONE, "Expired", format!("too old resource version: {requested} ({oldest})"), None)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let (Some(details), Some(map)) = (&self.details, status.as_object_mut()) {
            map.insert("details".into(), details.clone());
        }
        if let Some(map) = status.as_object_mut() {
            map.insert("code".into(), json!(self.code.as_u16()));
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_the_real_server_writes_them() {
        assert_eq!(ApiError::not_found(Resource::Jobs, "x").message, "jobs.batch \"x\" not found");
        assert_eq!(ApiError::already_exists(Resource::Pods, "p").message, "pods \"p\" already exists");
        let forbidden = ApiError::forbidden(
            Resource::Jobs,
            None,
            None,
            "create",
            "system:serviceaccount:weft:weft-agent",
            Some("flows"),
        );
        assert_eq!(
            forbidden.message,
            "jobs.batch is forbidden: User \"system:serviceaccount:weft:weft-agent\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"flows\""
        );
        let invalid =
            ApiError::invalid(Resource::Jobs, "x", &[FieldError::required("spec.template.spec.containers", "")]);
        assert_eq!(invalid.message, "Job.batch \"x\" is invalid: spec.template.spec.containers: Required value");
        let two = ApiError::invalid(
            Resource::Jobs,
            "x",
            &[FieldError::required("a", ""), FieldError::not_supported("b", "Always", vec!["OnFailure", "Never"])],
        );
        assert_eq!(
            two.message,
            "Job.batch \"x\" is invalid: [a: Required value, b: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"]"
        );
    }
}
