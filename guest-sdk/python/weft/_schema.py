"""JSON Schema from a flow function's signature: its type hints, defaults
and docstring. Read at build time, in the Python that runs the build."""

import dataclasses
import enum
import inspect
import re
import typing

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class SchemaError(Exception):
    """A parameter whose type cannot be described."""


def parameters_schema(function) -> dict:
    """The JSON Schema of the parameters object of a flow function."""
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function)
    descriptions = _described(inspect.getdoc(function) or "")
    properties, required = {}, []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise SchemaError(
                f"flow `{function.__name__}`: `*{name}` cannot be a parameter: name each parameter and give it a type"
            )
        try:
            schema = type_schema(hints.get(name, typing.Any))
        except SchemaError as e:
            raise SchemaError(f"flow `{function.__name__}`: parameter `{name}`: {e}") from None
        if name in descriptions:
            schema["description"] = descriptions[name]
        if parameter.default is parameter.empty:
            required.append(name)
        else:
            schema["default"] = _jsonable(parameter.default)
        properties[name] = schema
    schema = {
        "$schema": DIALECT,
        "title": function.__name__,
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    summary = (inspect.getdoc(function) or "").split("\n\n")[0].strip()
    if summary:
        schema["description"] = summary
    if required:
        schema["required"] = required
    return schema


def type_schema(hint) -> dict:
    """The JSON Schema of one type hint."""
    if hint is typing.Any or hint is inspect.Parameter.empty:
        return {}
    if hint is type(None) or hint is None:
        return {"type": "null"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or (origin is not None and getattr(origin, "__name__", "") == "UnionType"):
        return {"anyOf": [type_schema(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, typing.List, set, frozenset, tuple) and origin is not tuple:
        return {"type": "array", "items": type_schema(args[0])} if args else {"type": "array"}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": type_schema(args[0])}
        return {"type": "array", "prefixItems": [type_schema(a) for a in args], "items": False}
    if origin in (dict, typing.Dict):
        if args and args[0] is not str:
            raise SchemaError("a dict parameter needs `str` keys (JSON object keys are text)")
        return {"type": "object", "additionalProperties": type_schema(args[1])} if args else {"type": "object"}
    if origin is typing.Annotated:
        return type_schema(args[0])
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if hint in simple:
        return {"type": simple[hint]}
    if hint in (list, set, tuple):
        return {"type": "array"}
    if hint is dict:
        return {"type": "object"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _object(hint, {f.name: f for f in dataclasses.fields(hint)})
    if isinstance(hint, type) and hasattr(hint, "model_json_schema"):  # a pydantic model
        return hint.model_json_schema()
    if typing.is_typeddict(hint):
        return _object(hint, None)
    raise SchemaError(f"type `{getattr(hint, '__name__', hint)}` has no JSON form: use str, int, float, bool, "
                      "list, dict, Optional, Literal, an Enum, a dataclass or a TypedDict")


def _object(cls, fields) -> dict:
    hints = typing.get_type_hints(cls)
    properties, required = {}, []
    for name, hint in hints.items():
        properties[name] = type_schema(hint)
        field = fields.get(name) if fields is not None else None
        if fields is None:
            if name in getattr(cls, "__required_keys__", set(hints)):
                required.append(name)
        elif field.default is not dataclasses.MISSING:
            properties[name]["default"] = _jsonable(field.default)
        elif field.default_factory is dataclasses.MISSING:
            required.append(name)
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _jsonable(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _described(doc: str) -> dict:
    """Parameter descriptions from an ``Args:`` (or ``Parameters:``)
    section of a docstring: ``name: what it is``."""
    found, inside = {}, False
    for line in doc.splitlines():
        if re.match(r"^\s*(Args|Arguments|Parameters|Params):\s*$", line):
            inside = True
            continue
        if inside:
            match = re.match(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$", line)
            if match:
                found[match.group(1)] = match.group(2).strip()
            elif line.strip() and not line.startswith((" ", "\t")):
                inside = False
    return found
