"""What a guest may know about the run it is part of."""

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Context:
    """The run a guest is executing in; see ``weft.context()``."""

    flow_run_id: str
    flow_name: str
    deployment_name: Optional[str]
    attempt: int
    task_run_id: Optional[str]


def context() -> Context:
    """The current run: flow run id, flow name, deployment, attempt, and the
    task run open now, if any."""
    from wit_world.imports import context as wit

    current = wit.current()
    return Context(
        flow_run_id=current.flow_run_id,
        flow_name=current.flow_name,
        deployment_name=current.deployment_name,
        attempt=current.attempt,
        task_run_id=current.task_run_id,
    )
