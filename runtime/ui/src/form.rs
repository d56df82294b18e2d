//! A deployment's run form, made from its flow's parameter JSON Schema:
//! one field per top-level property, typed by the schema (numbers, a
//! checkbox for a boolean, a choice for an enum, JSON for objects and
//! arrays), filled with the deployment's default or the schema's, and its
//! description beside it.
//!
//! What is sent back goes through the same parsing as `weft deployment run
//! --param` (`parse_assignment`) and the same schema check, so the form
//! accepts exactly what the command line accepts. Problems come back per
//! field.

use std::collections::BTreeMap;

use serde_json::Value;
use weft::model::{Deployment, ParameterError, Parameters, parse_assignment};

/// How a field is entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A line of text.
    Text,
    /// A number; `integer` steps by one.
    Number {
        /// Whether only whole numbers are allowed.
        integer: bool,
    },
    /// A checkbox.
    Checkbox,
    /// One of the schema's `enum` values.
    Choice(Vec<String>),
    /// JSON, for objects and arrays.
    Json,
}

/// One field of the form.
#[derive(Debug, Clone)]
pub struct Field {
    /// The parameter's name.
    pub name: String,
    /// What the schema says of it.
    pub description: Option<String>,
    /// How it is entered.
    pub input: Input,
    /// Its value as the form shows it.
    pub value: String,
    /// Whether the schema requires it.
    pub required: bool,
    /// What was wrong with the value sent.
    pub error: Option<String>,
}

impl Field {
    /// The `type` of its `<input>`.
    pub fn html_type(&self) -> &'static str {
        match self.input {
            Input::Number { .. } => "number",
            _ => "text",
        }
    }

    /// The `step` of a number input.
    pub fn step(&self) -> &'static str {
        match self.input {
            Input::Number { integer: true } => "1",
            _ => "any",
        }
    }

    /// Whether the checkbox is ticked.
    pub fn checked(&self) -> bool {
        self.value == "true"
    }

    /// Whether it is a checkbox.
    pub fn is_checkbox(&self) -> bool {
        self.input == Input::Checkbox
    }

    /// Whether it is entered as JSON.
    pub fn is_json(&self) -> bool {
        self.input == Input::Json
    }

    /// Whether this enum value is the one chosen.
    pub fn is_chosen(&self, choice: &str) -> bool {
        self.value == choice
    }

    /// The enum's values, if it has some.
    pub fn choices(&self) -> &[String] {
        match &self.input {
            Input::Choice(choices) => choices,
            _ => &[],
        }
    }
}

/// How a value is shown in a field: strings bare, the rest as JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The form's fields, filled with the deployment's defaults, then the
/// schema's.
pub fn fields(deployment: &Deployment) -> Vec<Field> {
    let Some(schema) = &deployment.parameters_schema else { return Vec::new() };
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    properties
        .iter()
        .map(|(name, property)| {
            let kind = property.get("type").and_then(|t| match t {
                Value::String(s) => Some(s.as_str()),
                // ["integer", "null"]: the first type that is not null.
                Value::Array(types) => types.iter().filter_map(Value::as_str).find(|t| *t != "null"),
                _ => None,
            });
            let input = if let Some(values) = property.get("enum").and_then(Value::as_array) {
                Input::Choice(values.iter().map(shown).collect())
            } else {
                match kind {
                    Some("integer") => Input::Number { integer: true },
                    Some("number") => Input::Number { integer: false },
                    Some("boolean") => Input::Checkbox,
                    Some("object" | "array") => Input::Json,
                    _ => Input::Text,
                }
            };
            let default = deployment.parameters.get(name).or_else(|| property.get("default"));
            Field {
                name: name.clone(),
                description: property
                    .get("description")
                    .or_else(|| property.get("title"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                input,
                value: default.map(shown).unwrap_or_default(),
                required: required.contains(&name.as_str()),
                error: None,
            }
        })
        .collect()
}

/// What a sent form asks for: the fields as sent, with the problems of
/// those that do not parse, and the parameters given when all do (an empty
/// field is left to the defaults).
pub fn parse(deployment: &Deployment, sent: &[(String, String)]) -> (Vec<Field>, Option<Parameters>) {
    let mut fields = fields(deployment);
    // A checkbox sends a hidden "false" before its "true": the last wins.
    let values: BTreeMap<&str, &str> = sent.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut parameters = Parameters::new();
    let mut failed = false;
    for field in &mut fields {
        let value = values.get(format!("param.{}", field.name).as_str()).copied().unwrap_or_default();
        field.value = value.to_owned();
        if value.trim().is_empty() && !field.is_checkbox() {
            continue;
        }
        let assignment = format!("{}={value}", field.name);
        match parse_assignment(&deployment.flow_name, &assignment, deployment.parameters_schema.as_ref()) {
            Ok((name, value)) => {
                parameters.insert(name, value);
            }
            Err(error) => {
                failed = true;
                field.error = Some(messages(&error));
            }
        }
    }
    let parameters = (!failed).then_some(parameters);
    (fields, parameters)
}

/// A parameter error's problems in a line.
fn messages(error: &ParameterError) -> String {
    error.problems.iter().map(|p| p.message.clone()).collect::<Vec<_>>().join("; ")
}

/// Puts a schema check's problems beside the fields they concern; what
/// concerns no field comes back to be shown above them.
pub fn place(fields: &mut [Field], error: &ParameterError) -> Vec<String> {
    let mut elsewhere = Vec::new();
    for problem in &error.problems {
        let top = problem.parameter.split(['.', '[']).next().unwrap_or_default();
        match fields.iter_mut().find(|f| f.name == top && !top.is_empty()) {
            Some(field) => {
                let message = problem.message.clone();
                field.error = Some(match field.error.take() {
                    Some(before) => format!("{before}; {message}"),
                    None => message,
                });
            }
            None if problem.parameter.is_empty() => elsewhere.push(problem.message.clone()),
            None => elsewhere.push(format!("`{}`: {}", problem.parameter, problem.message)),
        }
    }
    elsewhere
}
