"""A Python flow whose task fails three times, retried with exponential
backoff and jitter, and then succeeds."""

import weft

attempts = {"n": 0}


@weft.task(retries=3, retry_backoff=weft.backoff(initial="20ms", factor=3, max="100ms", jitter=0.5))
def flaky() -> str:
    attempts["n"] += 1
    if attempts["n"] < 4:
        raise weft.Error.retryable_error(f"attempt {attempts['n']} failed")
    return f"ok on attempt {attempts['n']}"


@weft.flow
def backoff() -> str:
    return flaky()
