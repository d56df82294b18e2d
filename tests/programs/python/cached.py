"""A Python flow whose task keeps its cached result for 4 s; the result
names the flow run that made it."""

import weft


@weft.task(cache_key=lambda n: f"stamp-{n}", cache_expiration="4s")
def stamp(n: int) -> str:
    return f"{n} from {weft.context().flow_run_id}"


@weft.flow
def cached() -> dict:
    return {"items": [stamp(1), stamp(1)]}
