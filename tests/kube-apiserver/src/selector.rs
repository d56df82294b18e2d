//! `labelSelector` (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`)
//! and `fieldSelector` (`f=v`, `f==v`, `f!=v`) parsing and matching.

use serde_json::Value;

use crate::resource::Resource;
use crate::status::ApiError;

#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`; the empty one matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_error(detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {detail}"))
}

fn check_key(key: &str, requirement: &str) -> Result<String, ApiError> {
    let valid =
        !key.is_empty() && key.len() <= 317 && key.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if valid { Ok(key.to_owned()) } else { Err(parse_error(format!("invalid label key in {requirement:?}"))) }
}

fn parse_set(text: &str, requirement: &str) -> Result<Vec<String>, ApiError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| parse_error(format!("found '{text}', expected: '(' in {requirement:?}")))?;
    Ok(inner.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect())
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(LabelSelector { requirements });
        }
        for part in split_top_level(text) {
            let part = part.trim();
            let requirement = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(check_key(key.trim(), part)?)
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(check_key(key.trim(), part)?, value.trim().to_owned())
            } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(check_key(key.trim(), part)?, value.trim().to_owned())
            } else if let Some((key, rest)) = part.split_once(char::is_whitespace) {
                let rest = rest.trim_start();
                if let Some(set) = rest.strip_prefix("notin") {
                    Requirement::NotIn(check_key(key, part)?, parse_set(set, part)?)
                } else if let Some(set) = rest.strip_prefix("in") {
                    Requirement::In(check_key(key, part)?, parse_set(set, part)?)
                } else {
                    return Err(parse_error(format!("found '{rest}', expected: in, notin, =, ==, != in {part:?}")));
                }
            } else {
                Requirement::Exists(check_key(part, part)?)
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, set) => label(k).is_some_and(|l| set.iter().any(|v| v == l)),
            Requirement::NotIn(k, set) => !label(k).is_some_and(|l| set.iter().any(|v| v == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        })
    }
}

/// A parsed `fieldSelector` for one resource.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldSelector {
    /// (field, value, equal?)
    terms: Vec<(String, String, bool)>,
}

impl FieldSelector {
    pub fn parse(text: &str, resource: Resource) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        if text.trim().is_empty() {
            return Ok(FieldSelector { terms });
        }
        for part in text.split(',') {
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, v, true)
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: '{text}'; can't understand '{part}'")));
            };
            let field = field.trim();
            if resource.field_value(&Value::Null, field).is_none() {
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
            terms.push((field.to_owned(), value.trim().to_owned(), equal));
        }
        Ok(FieldSelector { terms })
    }

    pub fn matches(&self, resource: Resource, object: &Value) -> bool {
        self.terms.iter().all(|(field, value, equal)| {
            let actual = resource.field_value(object, field).unwrap_or_default();
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}})
    }

    #[test]
    fn label_selectors_match_like_the_real_server() -> Result<(), String> {
        let object = labelled(json!({"app": "weft", "tier": "flow"}));
        let cases = [
            ("", true),
            ("app=weft", true),
            ("app==weft,tier=flow", true),
            ("app=other", false),
            ("app!=other", true),
            ("missing!=x", true),
            ("app in (weft, x)", true),
            ("app in (x,y)", false),
            ("app notin (x,y)", true),
            ("missing notin (x)", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
        ];
        for (text, expected) in cases {
            let selector = LabelSelector::parse(text).map_err(|e| e.message)?;
            assert_eq!(selector.matches(&object), expected, "{text}");
        }
        assert!(LabelSelector::parse("app in x").is_err());
        Ok(())
    }

    #[test]
    fn field_selectors_reject_unsupported_labels() -> Result<(), String> {
        let event = json!({"metadata": {"name": "e"}, "involvedObject": {"name": "job-1"}});
        let selector = FieldSelector::parse("involvedObject.name=job-1", Resource::Events).map_err(|e| e.message)?;
        assert!(selector.matches(Resource::Events, &event));
        let other = FieldSelector::parse("involvedObject.name!=job-1", Resource::Events).map_err(|e| e.message)?;
        assert!(!other.matches(Resource::Events, &event));
        let error = FieldSelector::parse("spec.x=1", Resource::Jobs).err().map(|e| e.message);
        assert_eq!(error.as_deref(), Some("field label not supported: spec.x"));
        Ok(())
    }
}
