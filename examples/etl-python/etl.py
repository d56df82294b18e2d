"""The classic extract, transform, load flow, in Python.

Build it with `make demo-python` (or by hand:
`python -m weft build examples/etl-python/etl.py -o etl-python.wasm`, with
guest-sdk/python on PYTHONPATH) and run it with
`weft run etl-python.wasm -p count=4`.
"""

from typing import Literal

import weft


@weft.task(retries=3, retry_delay=["1s", "10s"])
def extract(count: int, source: str) -> list[int]:
    weft.log.info("extracting", source=source)
    return list(range(1, count + 1))


@weft.task
def transform(data: list[int], factor: int) -> list[int]:
    return [x * factor for x in data]


@weft.task
def load(data: list[int]) -> None:
    weft.log.info(f"Here's your data: {data}", rows=len(data))


@weft.flow(name="etl-python")
def etl(count: int = 3, factor: int = 10, source: Literal["inline", "api"] = "inline") -> list[int]:
    """Extracts `count` numbers, multiplies them, and loads them.

    Args:
        count: How many items to extract.
        factor: What each item is multiplied by.
        source: Where the items come from.
    """
    weft.get_run_logger().debug("starting", extra={"fields": {"attempt": weft.context().attempt}})
    data = transform(extract(count, source), factor)
    load(data)
    return data
