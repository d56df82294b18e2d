"""Calling task components: ``call_task`` runs one and waits;
``submit_task`` starts one, and several submitted run at the same time."""

import json

from ._errors import TaskError


def _raise(error) -> None:
    raise TaskError(error.message, error.retryable) from None


def call_task(name: str, input=None):
    """Runs the task component registered as `name` with `input` (any JSON
    value) and returns its result; raises ``weft.TaskError`` with the
    task's error."""
    from componentize_py_types import Err
    from wit_world.imports import tasks as wit

    try:
        return json.loads(wit.call(name, json.dumps(input)))
    except Err as e:
        _raise(e.value)


class SubmittedTask:
    """A task component run started with ``submit_task``."""

    def __init__(self, name: str, handle):
        self.name = name
        self._handle = handle

    def wait(self):
        """Waits for the task run to end; returns its result, or raises
        ``weft.TaskError``."""
        from componentize_py_types import Err

        try:
            return json.loads(self._handle.wait())
        except Err as e:
            _raise(e.value)
        finally:
            self._handle.__exit__(None, None, None)


def submit_task(name: str, input=None) -> SubmittedTask:
    """Starts the task component registered as `name` without waiting."""
    from componentize_py_types import Err
    from wit_world.imports import tasks as wit

    try:
        return SubmittedTask(name, wit.submit(name, json.dumps(input)))
    except Err as e:
        _raise(e.value)
