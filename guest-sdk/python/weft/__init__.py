"""Write weft flows and tasks in Python.

A flow is a function marked ``@weft.flow``; its parameters are the
function's, typed with ordinary type hints, from which weft derives the JSON
Schema it checks parameters against before anything runs. Functions marked
``@weft.task`` are recorded as task runs, retried and cached by the host.
A task component (a component of its own, called by name from a flow) is a
function marked ``@weft.task_component``.

Build a flow into a component with ``python -m weft build etl.py -o
etl.wasm`` (componentize-py, then ``weft component annotate``), and run it
with ``weft run etl.wasm -p count=3``.

    import weft

    @weft.task(retries=3, retry_delay=[1, 10])
    def extract(count: int) -> list[int]:
        return list(range(1, count + 1))

    @weft.flow
    def etl(count: int = 3) -> list[int]:
        data = [x * 10 for x in extract(count)]
        weft.log.info(f"Here's your data: {data}", rows=len(data))
        return data
"""

from ._errors import Error, TaskError
from ._context import Context, context
from ._flows import backoff, flow, task, task_component
from ._tasks import SubmittedTask, call_task, submit_task
from . import log
from .log import get_run_logger

__all__ = [
    "Context",
    "Error",
    "SubmittedTask",
    "TaskError",
    "backoff",
    "call_task",
    "context",
    "flow",
    "get_run_logger",
    "log",
    "submit_task",
    "task",
    "task_component",
]
