"""The decorators: ``@flow``, ``@task`` and ``@task_component``."""

import functools
import json
import random
import re

from ._convert import encode
from ._errors import Error, to_wit_error

# What a module declares; the build reads it, the entry points call it.
registry = {"flow": None, "task_component": None}


def flow(function=None, *, name: str = None):
    """Marks the flow function of a component. Its parameters are the flow's
    parameters; their type hints and defaults become the JSON Schema weft
    checks parameters against. ``@flow(name="etl")`` names the flow (default:
    the function's name)."""

    def mark(function):
        if registry["flow"] is not None and registry["flow"][0] is not function:
            raise Error.fatal(f"a component has one flow: `{registry['flow'][1]}` is marked already")
        registry["flow"] = (function, name or function.__name__)
        return function

    return mark(function) if function is not None else mark


def task_component(function=None, *, name: str = None):
    """Marks the entry point of a task component: a function of one
    argument (the input, decoded from JSON), or of keyword parameters
    (the members of an input object)."""

    def mark(function):
        registry["task_component"] = (function, name or function.__name__)
        return function

    return mark(function) if function is not None else mark


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def seconds(value) -> float:
    """Seconds from a number, a ``datetime.timedelta``, or a text such as
    ``500ms``, ``10s``, ``5m``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    match = _DURATION.match(str(value))
    if not match:
        raise Error.fatal(f"invalid duration {value!r}: write a number of seconds or 500ms, 10s, 5m, 1h")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


class backoff:
    """Exponential backoff with jitter, for ``@task(retry_backoff=...)``:
    retry n waits ``initial * factor ** (n - 1)``, at most ``max``, varied at
    random by up to ``jitter`` of itself, so that many failing tasks do not
    retry in lockstep (as Prefect's ``exponential_backoff`` with
    ``retry_jitter_factor``)."""

    def __init__(self, initial, factor: float = 2, max="10m", jitter: float = 0.2):
        if factor < 1:
            raise Error.fatal(f"backoff factor {factor} must be at least 1")
        if not 0 <= jitter <= 1:
            raise Error.fatal(f"backoff jitter {jitter} must be between 0 and 1, such as 0.2")
        self.initial, self.factor, self.max, self.jitter = seconds(initial), factor, seconds(max), jitter

    def delays_ms(self, retries: int) -> list:
        """The waits before each of ``retries`` retries, drawn afresh."""
        waits = []
        for n in range(retries):
            base = min(self.initial * self.factor**n, self.max)
            waits.append(int(base * (1 + self.jitter * (2 * random.random() - 1)) * 1000))
        return waits


def task(
    function=None,
    *,
    name: str = None,
    retries: int = 0,
    retry_delay=None,
    retry_backoff: backoff = None,
    timeout=None,
    cache_key=None,
    cache_expiration=None,
):
    """Marks a function as a task: each call is a task run the host records,
    retries (``retries``, with ``retry_delay``: one wait or a list, the last
    repeating; or ``retry_backoff=weft.backoff(initial="1s", factor=2,
    max="10m", jitter=0.2)``) and caches (``cache_key``: a string, or a
    function of the task's arguments that returns one; ``cache_expiration``,
    a duration such as ``"1h"`` or a ``timedelta``, bounds how long a cached
    result is reused, forever without it). ``timeout`` ends the
    flow run when an attempt runs longer. Only retryable errors are retried:
    any exception but ``weft.Error.fatal``."""
    if retry_delay is not None and retry_backoff is not None:
        raise Error.fatal("a task has either `retry_delay` (a wait or a list of waits) or `retry_backoff`, not both")
    delays = retry_delay if isinstance(retry_delay, (list, tuple)) else ([retry_delay] if retry_delay else [])
    delays_ms = [int(seconds(d) * 1000) for d in delays]
    timeout_ms = int(seconds(timeout) * 1000) if timeout is not None else None
    if cache_expiration is not None and cache_key is None:
        raise Error.fatal("`cache_expiration` needs a `cache_key`: the results it expires are the ones cached under that key")
    expiration_ms = int(seconds(cache_expiration) * 1000) if cache_expiration is not None else None

    def wrap(function):
        task_name = name or function.__name__

        @functools.wraps(function)
        def run(*args, **kwargs):
            from componentize_py_types import Err, Ok
            from wit_world.imports import tasks as wit

            key = cache_key(*args, **kwargs) if callable(cache_key) else cache_key
            waits = retry_backoff.delays_ms(retries) if retry_backoff is not None else delays_ms
            options = wit.TaskOptions(
                retries=retries,
                retry_delays_ms=waits,
                timeout_ms=timeout_ms,
                cache_key=key,
                cache_expiration_ms=expiration_ms,
            )
            outcome = wit.begin(task_name, options)
            if isinstance(outcome, wit.BeginOutcome_Cached):
                return json.loads(outcome.value)
            task_run_id = outcome.value
            while True:
                failure = None
                try:
                    value = function(*args, **kwargs)
                    try:
                        report = Ok(encode(value))
                    except (TypeError, ValueError) as e:
                        failure = Error.fatal(f"the result of task `{task_name}` cannot be written as JSON: {e}")
                        report = Err(to_wit_error(failure))
                except Exception as e:  # the task's own failure, reported to the host
                    failure = e
                    report = Err(to_wit_error(e))
                if wit.end(task_run_id, report) == wit.NextStep.RETRY:
                    continue
                if failure is not None:
                    raise failure
                return value

        return run

    return wrap(function) if function is not None else wrap
