//! Parameter schemas that exist at compile time.
//!
//! A flow's parameter schema is embedded in the component's
//! `weft:parameters-schema` custom section, so that `weft run`, `weft deploy`
//! and any other tool can validate parameters without running the flow. A
//! custom section holds bytes fixed at compile time, so the schema is a
//! `const` tree ([`Schema`]) that [`JsonSchema`] types provide, and
//! [`json_len`]/[`json_bytes`] turn it into JSON text during constant
//! evaluation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// A type whose JSON Schema is known at compile time.
///
/// Derive it with `#[derive(weft::JsonSchema)]` on the parameter struct of a
/// flow (and on the structs and unit-only enums it contains). The derive reads
/// serde's `rename`, `rename_all`, `default` and `skip` attributes so that the
/// schema describes exactly what serde accepts, and turns doc comments into
/// descriptions. Unknown parameters are rejected (`additionalProperties:
/// false`), so a misspelt `-p nmae=...` fails instead of being ignored.
///
/// It is implemented for the primitive types, `String`, `Option`, `Box`,
/// sequences, sets, maps with string keys, and `serde_json::Value` (any JSON).
pub trait JsonSchema {
    /// The type's schema.
    const SCHEMA: Schema;
}

/// A JSON Schema, as a tree that can be built and written in `const` code.
#[derive(Debug, Clone, Copy)]
pub enum Schema {
    /// Any JSON value.
    Any,
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// An integer within the given inclusive bounds.
    Integer {
        /// The smallest value allowed.
        min: i128,
        /// The largest value allowed.
        max: i128,
    },
    /// Any JSON number.
    Number,
    /// Any string.
    String,
    /// A string that is one of the listed values.
    Enum(&'static [&'static str]),
    /// An array whose items all match the schema.
    Array {
        /// The schema of every item.
        items: &'static Schema,
        /// Whether items must be distinct (sets).
        unique: bool,
    },
    /// An object with arbitrary keys whose values all match the schema.
    Map(&'static Schema),
    /// The schema, or `null`; a field of this schema may be left out.
    Optional(&'static Schema),
    /// An object with named fields.
    Object {
        /// The fields, in declaration order.
        fields: &'static [Field],
        /// A description of the whole object (the type's doc comment).
        description: Option<&'static str>,
    },
}

/// One field of an object schema.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The field's name in JSON (after serde's renames).
    pub name: &'static str,
    /// The field's schema.
    pub schema: &'static Schema,
    /// Whether the field must be present.
    pub required: bool,
    /// The field's doc comment.
    pub description: Option<&'static str>,
}

impl Schema {
    /// Whether a field of this schema may be left out.
    pub const fn is_optional(&self) -> bool {
        matches!(self, Schema::Optional(_))
    }
}

/// Length in bytes of the JSON text of `schema`.
pub const fn json_len(schema: &Schema) -> usize {
    let mut out = Out { buf: &mut [], len: 0 };
    write_document(&mut out, schema);
    out.len
}

/// The JSON text of `schema`; `N` must be [`json_len`] of it.
pub const fn json_bytes<const N: usize>(schema: &Schema) -> [u8; N] {
    let mut buf = [0u8; N];
    let mut out = Out { buf: &mut buf, len: 0 };
    write_document(&mut out, schema);
    assert!(out.len == N, "json_bytes: N must be json_len(schema)");
    buf
}

/// A cursor over a buffer; with an empty buffer it only counts.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Out<'_> {
    const fn byte(&mut self, b: u8) {
        if !self.buf.is_empty() {
            self.buf[self.len] = b;
        }
        self.len += 1;
    }

    const fn raw(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            self.byte(bytes[i]);
            i += 1;
        }
    }

    const fn string(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.byte(b'"');
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'"' => self.raw("\\\""),
                b'\\' => self.raw("\\\\"),
                b'\n' => self.raw("\\n"),
                b'\r' => self.raw("\\r"),
                b'\t' => self.raw("\\t"),
                0..=0x1f => {
                    self.raw("\\u00");
                    self.byte(HEX[(b >> 4) as usize]);
                    self.byte(HEX[(b & 0xf) as usize]);
                }
                _ => self.byte(b),
            }
            i += 1;
        }
        self.byte(b'"');
    }

    const fn integer(&mut self, v: i128) {
        if v < 0 {
            self.byte(b'-');
        }
        let mut magnitude = v.unsigned_abs();
        let mut digits = [0u8; 40];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (magnitude % 10) as u8;
            n += 1;
            magnitude /= 10;
            if magnitude == 0 {
                break;
            }
        }
        while n > 0 {
            n -= 1;
            self.byte(digits[n]);
        }
    }
}

const fn write_document(out: &mut Out<'_>, schema: &Schema) {
    // The dialect is stated so that validators pick the right rules.
    out.raw("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",");
    write_body(out, schema);
    out.byte(b'}');
}

const fn write(out: &mut Out<'_>, schema: &Schema) {
    out.byte(b'{');
    write_body(out, schema);
    out.byte(b'}');
}

/// Writes the members of the schema object, without the braces.
const fn write_body(out: &mut Out<'_>, schema: &Schema) {
    match schema {
        Schema::Any => out.raw("\"description\":\"any JSON value\""),
        Schema::Null => out.raw("\"type\":\"null\""),
        Schema::Boolean => out.raw("\"type\":\"boolean\""),
        Schema::Integer { min, max } => {
            out.raw("\"type\":\"integer\",\"minimum\":");
            out.integer(*min);
            out.raw(",\"maximum\":");
            out.integer(*max);
        }
        Schema::Number => out.raw("\"type\":\"number\""),
        Schema::String => out.raw("\"type\":\"string\""),
        Schema::Enum(values) => {
            out.raw("\"type\":\"string\",\"enum\":[");
            let mut i = 0;
            while i < values.len() {
                if i > 0 {
                    out.byte(b',');
                }
                out.string(values[i]);
                i += 1;
            }
            out.byte(b']');
        }
        Schema::Array { items, unique } => {
            out.raw("\"type\":\"array\",\"items\":");
            write(out, items);
            if *unique {
                out.raw(",\"uniqueItems\":true");
            }
        }
        Schema::Map(values) => {
            out.raw("\"type\":\"object\",\"additionalProperties\":");
            write(out, values);
        }
        Schema::Optional(inner) => {
            out.raw("\"anyOf\":[");
            write(out, inner);
            out.raw(",{\"type\":\"null\"}]");
        }
        Schema::Object { fields, description } => {
            out.raw("\"type\":\"object\",");
            if let Some(text) = description {
                out.raw("\"description\":");
                out.string(text);
                out.byte(b',');
            }
            out.raw("\"properties\":{");
            let mut i = 0;
            while i < fields.len() {
                if i > 0 {
                    out.byte(b',');
                }
                let field = &fields[i];
                out.string(field.name);
                out.byte(b':');
                out.byte(b'{');
                if let Some(text) = field.description {
                    out.raw("\"description\":");
                    out.string(text);
                    out.byte(b',');
                }
                write_body(out, field.schema);
                out.byte(b'}');
                i += 1;
            }
            out.raw("},\"required\":[");
            let mut i = 0;
            let mut first = true;
            while i < fields.len() {
                if fields[i].required {
                    if !first {
                        out.byte(b',');
                    }
                    out.string(fields[i].name);
                    first = false;
                }
                i += 1;
            }
            out.raw("],\"additionalProperties\":false");
        }
    }
}

macro_rules! integer_schema {
    ($($t:ty),*) => {$(
        impl JsonSchema for $t {
            const SCHEMA: Schema = Schema::Integer { min: <$t>::MIN as i128, max: <$t>::MAX as i128 };
        }
    )*};
}
integer_schema!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

macro_rules! simple_schema {
    ($($t:ty => $s:expr),* $(,)?) => {$(
        impl JsonSchema for $t {
            const SCHEMA: Schema = $s;
        }
    )*};
}
simple_schema!(
    bool => Schema::Boolean,
    f32 => Schema::Number,
    f64 => Schema::Number,
    // Beyond i64 JSON integers lose precision in most languages; say "number".
    i128 => Schema::Number,
    u128 => Schema::Number,
    String => Schema::String,
    char => Schema::String,
    () => Schema::Null,
    serde_json::Value => Schema::Any,
    serde_json::Map<String, serde_json::Value> => Schema::Map(&Schema::Any),
);

impl<T: JsonSchema> JsonSchema for Option<T> {
    const SCHEMA: Schema = Schema::Optional(&T::SCHEMA);
}
impl<T: JsonSchema> JsonSchema for Box<T> {
    const SCHEMA: Schema = T::SCHEMA;
}

macro_rules! sequence_schema {
    ($unique:expr => $($t:ident),*) => {$(
        impl<T: JsonSchema> JsonSchema for $t<T> {
            const SCHEMA: Schema = Schema::Array { items: &T::SCHEMA, unique: $unique };
        }
    )*};
}
sequence_schema!(false => Vec, VecDeque);
sequence_schema!(true => BTreeSet);

impl<T: JsonSchema, S> JsonSchema for HashSet<T, S> {
    const SCHEMA: Schema = Schema::Array { items: &T::SCHEMA, unique: true };
}
impl<T: JsonSchema, const N: usize> JsonSchema for [T; N] {
    const SCHEMA: Schema = Schema::Array { items: &T::SCHEMA, unique: false };
}
impl<T: JsonSchema> JsonSchema for BTreeMap<String, T> {
    const SCHEMA: Schema = Schema::Map(&T::SCHEMA);
}
impl<T: JsonSchema, S> JsonSchema for HashMap<String, T, S> {
    const SCHEMA: Schema = Schema::Map(&T::SCHEMA);
}

/// The parameters of a flow that takes none: an empty object.
pub const NO_PARAMETERS: Schema = Schema::Object { fields: &[], description: None };

#[cfg(test)]
mod tests {
    use super::*;

    const fn text<const N: usize>(schema: &Schema) -> [u8; N] {
        json_bytes(schema)
    }

    #[test]
    fn writes_valid_json_with_escapes_and_required_fields() {
        const INNER: Schema = Schema::Enum(&["a", "b\"c"]);
        const S: Schema = Schema::Object {
            description: Some("line one\nline \"two\""),
            fields: &[
                Field { name: "n", schema: &<u8 as JsonSchema>::SCHEMA, required: true, description: None },
                Field {
                    name: "tag",
                    schema: &<Option<i64> as JsonSchema>::SCHEMA,
                    required: false,
                    description: Some("a\\b"),
                },
                Field { name: "kind", schema: &INNER, required: true, description: None },
                Field { name: "xs", schema: &<Vec<String> as JsonSchema>::SCHEMA, required: false, description: None },
            ],
        };
        const LEN: usize = json_len(&S);
        const BYTES: [u8; LEN] = text(&S);
        let value: serde_json::Value = serde_json::from_slice(&BYTES).expect("schema is JSON");
        assert_eq!(value["required"], serde_json::json!(["n", "kind"]));
        assert_eq!(value["properties"]["n"]["maximum"], 255);
        assert_eq!(value["properties"]["n"]["minimum"], 0);
        assert_eq!(value["properties"]["tag"]["description"], "a\\b");
        assert_eq!(value["properties"]["tag"]["anyOf"][0]["minimum"], i64::MIN);
        assert_eq!(value["properties"]["kind"]["enum"][1], "b\"c");
        assert_eq!(value["properties"]["xs"]["items"]["type"], "string");
        assert_eq!(value["description"], "line one\nline \"two\"");
        assert_eq!(value["additionalProperties"], false);
    }
}
