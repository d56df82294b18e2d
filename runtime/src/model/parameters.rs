//! Flow parameters: parsing `key=value` assignments and validating a
//! parameters object against the flow's JSON Schema.

use std::fmt;

use serde_json::{Map, Value};

/// The parameters of a flow run: a JSON object.
pub type Parameters = Map<String, Value>;

/// Parameters that were refused, with every problem found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ParameterError {
    /// The flow (or deployment) whose parameters they are.
    pub flow: String,
    /// What is wrong, one entry per problem.
    pub problems: Vec<ParameterProblem>,
}

/// One thing wrong with a flow's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterProblem {
    /// The parameter, as a dotted path (`source.url`); empty for the whole
    /// parameters object.
    pub parameter: String,
    /// What is wrong with it, for a person.
    pub message: String,
}

impl fmt::Display for ParameterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if problem.parameter.is_empty() {
                write!(f, "flow `{}`: parameters {}", self.flow, problem.message)?;
            } else {
                write!(f, "flow `{}`: parameter `{}` {}", self.flow, problem.parameter, problem.message)?;
            }
        }
        Ok(())
    }
}

impl ParameterError {
    fn single(flow: &str, parameter: &str, message: String) -> Self {
        ParameterError {
            flow: flow.to_owned(),
            problems: vec![ParameterProblem { parameter: parameter.to_owned(), message }],
        }
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
        let problems: Vec<ParameterProblem> =
            self.validator.iter_errors(&instance).flat_map(|error| problems_of(&error)).collect();
        if problems.is_empty() { Ok(()) } else { Err(ParameterError { flow: flow.to_owned(), problems }) }
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
    let one = |parameter: String, message: String| vec![ParameterProblem { parameter, message }];
    match error.kind() {
        Kind::Required { property } => {
            let name = property.as_str().map(str::to_owned).unwrap_or_else(|| property.to_string());
            let full = if parameter.is_empty() { name } else { format!("{parameter}.{name}") };
            one(full, "is required but missing: pass it with `-p key=value` or in the parameters file".to_owned())
        }
        Kind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| ParameterProblem {
                parameter: if parameter.is_empty() { name.clone() } else { format!("{parameter}.{name}") },
                message: "is not a parameter of this flow (check its spelling)".to_owned(),
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
        assert!(text.contains("parameter `nmae` is not a parameter of this flow"), "{text}");
        assert!(text.contains("parameter `n` must be at most 255, got 300"), "{text}");
        assert!(s.validate("etl", &params(json!({"name": "x", "n": 3}))).is_ok());
    }
}
