//! Flow parameters: parsing `key=value` assignments and validating a
//! parameters object against the flow's JSON Schema.

use std::fmt;

use serde_json::{Map, Value};

/// The parameters of a flow run: a JSON object.
pub type Parameters = Map<String, Value>;

/// Parameters that were refused, with every problem found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ParameterError {
    /// The flow whose parameters they are.
    pub flow: String,
    /// What is wrong, one entry per problem.
    pub problems: Vec<ParameterProblem>,
    /// Where the parameters were written, which decides the fix offered.
    pub origin: ParameterOrigin,
}

/// Where parameters come from, for the fix an error offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ParameterOrigin {
    /// `-p key=value` and `--params-file`.
    #[default]
    CommandLine,
    /// A deployment's `parameters:` in its deployment file.
    DeploymentFile,
}

/// One thing wrong with a flow's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterProblem {
    /// The parameter, as a dotted path (`source.url`); empty for the whole
    /// parameters object.
    pub parameter: String,
    /// What is wrong with it, for a person.
    pub message: String,
    /// What kind of problem, for the fix offered.
    pub kind: ProblemKind,
}

/// What kind of problem a [`ParameterProblem`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// A required parameter is missing.
    Required,
    /// A parameter the flow does not have; the closest one it has, if any
    /// is close.
    Unknown {
        /// The parameter probably meant.
        suggestion: Option<String>,
    },
    /// A value the schema refuses, or anything else.
    Invalid,
}

impl ParameterProblem {
    /// A problem of kind [`ProblemKind::Invalid`].
    pub fn invalid(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        ParameterProblem { parameter: parameter.into(), message: message.into(), kind: ProblemKind::Invalid }
    }
}

impl fmt::Display for ParameterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            let name = &problem.parameter;
            if name.is_empty() {
                write!(f, "flow `{}`: parameters {}", self.flow, problem.message)?;
            } else {
                write!(f, "flow `{}`: parameter `{name}` {}", self.flow, problem.message)?;
            }
            match (&problem.kind, self.origin) {
                (ProblemKind::Required, ParameterOrigin::CommandLine) => {
                    write!(f, ": pass it with `-p {name}=VALUE` or in the parameters file")?;
                }
                (ProblemKind::Required, ParameterOrigin::DeploymentFile) => {
                    write!(f, ": add it under the deployment's `parameters:`, which are all its scheduled runs get")?
                }
                (ProblemKind::Unknown { suggestion: Some(suggestion) }, _) => {
                    write!(f, ": did you mean `{suggestion}`?")?;
                }
                (ProblemKind::Unknown { suggestion: None }, _) => write!(f, " (check its spelling)")?,
                (ProblemKind::Invalid, _) => {}
            }
        }
        Ok(())
    }
}

impl ParameterError {
    fn single(flow: &str, parameter: &str, message: String) -> Self {
        ParameterError {
            flow: flow.to_owned(),
            problems: vec![ParameterProblem::invalid(parameter, message)],
            origin: ParameterOrigin::CommandLine,
        }
    }

    /// The same problems, with the fixes for parameters written in `origin`.
    pub fn from(mut self, origin: ParameterOrigin) -> Self {
        self.origin = origin;
        self
    }
}

/// Parses one `key=value` assignment from the command line.
///
/// The value is JSON when it parses as JSON (`n=10`, `tags=["a","b"]`,
/// `on=true`) and text otherwise (`name=Marvin`), except that a parameter the
/// schema declares as a string always takes the text as written (`id=007`).
pub fn parse_assignment(flow: &str, text: &str, schema: Option<&Value>) -> Result<(String, Value), ParameterError> {
    let Some((key, raw)) = text.split_once('=') else {
        return Err(ParameterError::single(
            flow,
            text,
            format!("has no value: write `-p {text}=VALUE` (`-p key=value`, the value in JSON or plain text)"),
        ));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(ParameterError::single(flow, "", format!("assignment `{text}` has no name before `=`")));
    }
    let declared_string =
        schema.and_then(|s| s.get("properties")).and_then(|p| p.get(key)).is_some_and(is_string_schema);
    let value = if declared_string {
        Value::String(raw.to_owned())
    } else {
        serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
    };
    Ok((key.to_owned(), value))
}

/// Whether a schema accepts strings and nothing else but null.
fn is_string_schema(schema: &Value) -> bool {
    match (schema.get("type"), schema.get("anyOf")) {
        (Some(Value::String(t)), _) => t == "string",
        (_, Some(Value::Array(options))) => {
            options.iter().any(is_string_schema)
                && options.iter().all(|o| is_string_schema(o) || o.get("type").and_then(Value::as_str) == Some("null"))
        }
        _ => false,
    }
}

/// A compiled parameter schema.
pub struct ParameterSchema {
    schema: Value,
    validator: jsonschema::Validator,
}

impl fmt::Debug for ParameterSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParameterSchema").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl ParameterSchema {
    /// Compiles a JSON Schema; the error says why it is not a usable schema.
    pub fn new(schema: Value) -> Result<Self, String> {
        let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
        Ok(ParameterSchema { schema, validator })
    }

    /// The schema as JSON.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Checks a parameters object; the error lists every problem, each
    /// naming its parameter.
    pub fn validate(&self, flow: &str, parameters: &Parameters) -> Result<(), ParameterError> {
        let instance = Value::Object(parameters.clone());
        let known: Vec<&str> = match self.schema.get("properties") {
            Some(Value::Object(properties)) => properties.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        let mut problems: Vec<ParameterProblem> =
            self.validator.iter_errors(&instance).flat_map(|error| problems_of(&error)).collect();
        for problem in &mut problems {
            if let ProblemKind::Unknown { suggestion } = &mut problem.kind
                && !problem.parameter.contains('.')
            {
                *suggestion = super::closest(&problem.parameter, known.iter().copied()).map(str::to_owned);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ParameterError { flow: flow.to_owned(), problems, origin: ParameterOrigin::CommandLine })
        }
    }
}

fn problems_of(error: &jsonschema::ValidationError<'_>) -> Vec<ParameterProblem> {
    use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};

    let path: Vec<String> = error
        .instance_path()
        .as_str()
        .split('/')
        .skip(1)
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect();
    let parameter = path.join(".");
    let got = error.instance();
    let one = |parameter: String, message: String| vec![ParameterProblem::invalid(parameter, message)];
    match error.kind() {
        Kind::Required { property } => {
            let name = property.as_str().map(str::to_owned).unwrap_or_else(|| property.to_string());
            let full = if parameter.is_empty() { name } else { format!("{parameter}.{name}") };
            vec![ParameterProblem {
                parameter: full,
                message: "is required but missing".into(),
                kind: ProblemKind::Required,
            }]
        }
        Kind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| ParameterProblem {
                parameter: if parameter.is_empty() { name.clone() } else { format!("{parameter}.{name}") },
                message: "is not a parameter of this flow".to_owned(),
                kind: ProblemKind::Unknown { suggestion: None },
            })
            .collect(),
        Kind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => format!("{} {t}", article(&t.to_string())),
                TypeKind::Multiple(set) => {
                    let names: Vec<String> = set.iter().map(|t| t.to_string()).collect();
                    format!("one of: {}", names.join(", "))
                }
            };
            one(parameter, format!("must be {expected}, got {got}"))
        }
        Kind::Minimum { limit } => one(parameter, format!("must be at least {limit}, got {got}")),
        Kind::Maximum { limit } => one(parameter, format!("must be at most {limit}, got {got}")),
        Kind::Enum { options } => one(parameter, format!("must be one of {options}, got {got}")),
        _ => one(parameter, format!("is invalid: {error}")),
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> ParameterSchema {
        ParameterSchema::new(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "n": {"type": "integer", "minimum": 0, "maximum": 255},
                "tag": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["name"],
            "additionalProperties": false,
        }))
        .expect("valid schema")
    }

    fn params(value: Value) -> Parameters {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn assignments_follow_the_schema() {
        let s = schema();
        let parse = |text| parse_assignment("f", text, Some(s.schema()));
        assert_eq!(parse("n=10"), Ok(("n".into(), json!(10))));
        assert_eq!(parse("name=007"), Ok(("name".into(), json!("007"))));
        assert_eq!(parse("tag=42"), Ok(("tag".into(), json!("42"))));
        assert_eq!(parse("other=Marvin"), Ok(("other".into(), json!("Marvin"))));
        assert_eq!(parse("xs=[1,2]"), Ok(("xs".into(), json!([1, 2]))));
        let error = parse("novalue").expect_err("no `=`");
        assert!(error.to_string().contains("-p novalue=VALUE"), "{error}");
    }

    #[test]
    fn problems_name_the_parameter() {
        let s = schema();
        let error = s.validate("etl", &params(json!({"n": "ten"}))).expect_err("invalid");
        let text = error.to_string();
        assert!(text.contains("flow `etl`: parameter `name` is required"), "{text}");
        assert!(text.contains("parameter `n` must be an integer, got \"ten\""), "{text}");

        let error = s.validate("etl", &params(json!({"name": "x", "nmae": 1, "n": 300}))).expect_err("invalid");
        let text = error.to_string();
        assert!(text.contains("parameter `nmae` is not a parameter of this flow: did you mean `name`?"), "{text}");
        let error = s.validate("etl", &params(json!({"name": "x", "zzz": 1}))).expect_err("invalid");
        assert!(error.to_string().contains("parameter `zzz` is not a parameter of this flow (check its spelling)"));

        let error = s.validate("etl", &params(json!({}))).expect_err("invalid");
        assert!(error.to_string().contains("`name` is required but missing: pass it with `-p name=VALUE`"));
        let error = error.from(ParameterOrigin::DeploymentFile);
        assert!(
            error.to_string().contains("`name` is required but missing: add it under the deployment's `parameters:`")
        );
        assert!(text.contains("parameter `n` must be at most 255, got 300"), "{text}");
        assert!(s.validate("etl", &params(json!({"name": "x", "n": 3}))).is_ok());
    }
}
