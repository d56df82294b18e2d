"""The component's exports, as componentize-py expects them: the build
writes an app module that imports the user's module and these classes."""

import inspect
import json
import sys
import typing

from ._convert import call_with_json, decode, encode
from ._errors import Error, to_wit_error
from ._flows import registry


def _respond(call):
    from componentize_py_types import Err

    try:
        value = call()
        try:
            return encode(value)
        except (TypeError, ValueError) as e:
            raise Error.fatal(f"the result cannot be written as JSON: {e}") from None
    except Err:
        raise
    except Exception as e:
        raise Err(to_wit_error(e)) from None
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


class FlowEntry:
    """`weft:flow/flow-entry`: runs the ``@weft.flow`` function."""

    def run(self, parameters: str) -> str:
        function, _ = registry["flow"]
        return _respond(lambda: call_with_json(function, parameters))


class TaskEntry:
    """`weft:flow/task-entry`: runs the ``@weft.task_component`` function."""

    def run(self, input: str) -> str:
        function, _ = registry["task_component"]

        def call():
            value = json.loads(input)
            parameters = inspect.signature(function).parameters
            if not parameters:
                return function()
            if len(parameters) == 1:
                (name, _), = parameters.items()
                hints = typing.get_type_hints(function)
                return function(decode(value, hints.get(name)))
            if not isinstance(value, dict):
                raise Error.fatal(f"invalid task input: expected a JSON object, got {type(value).__name__}")
            return call_with_json(function, input)

        return _respond(call)
