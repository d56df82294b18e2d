"""JSON in and out: results encoded (dataclasses as objects), parameters
decoded into the types the function declares (dataclasses, enums)."""

import dataclasses
import enum
import json
import typing


def encode(value) -> str:
    """JSON text for a result; dataclasses become objects, enums their values."""
    return json.dumps(value, default=_default, separators=(",", ":"))


def _default(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "model_dump"):  # a pydantic model
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def decode(value, hint):
    """A JSON value as the type `hint` declares, where it is a dataclass, an
    enum, a pydantic model, or a list or dict of those; anything else as is."""
    if hint is None or hint is typing.Any:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:
        for arg in args:
            if arg is type(None) and value is None:
                return None
        for arg in args:
            if arg is not type(None):
                return decode(value, arg)
        return value
    if origin in (list, typing.List) and args and isinstance(value, list):
        return [decode(v, args[0]) for v in value]
    if origin in (dict, typing.Dict) and len(args) == 2 and isinstance(value, dict):
        return {k: decode(v, args[1]) for k, v in value.items()}
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            hints = typing.get_type_hints(hint)
            return hint(**{k: decode(v, hints.get(k)) for k, v in value.items()})
        if issubclass(hint, enum.Enum):
            return hint(value)
        if hasattr(hint, "model_validate"):
            return hint.model_validate(value)
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    return value


def call_with_json(function, text: str):
    """Calls `function` with a JSON object's members as its keyword
    arguments, each decoded as the function declares it."""
    import inspect

    arguments = json.loads(text) if text else {}
    hints = typing.get_type_hints(function)
    if not isinstance(arguments, dict):
        raise TypeError(f"expected a JSON object of parameters, got {type(arguments).__name__}")
    parameters = inspect.signature(function).parameters
    return function(**{k: decode(v, hints.get(k)) for k, v in arguments.items() if k in parameters})
