"""Windmill's published orchestrator benchmark, as Prefect flows.

    python windmill.py fibo10x40   # 40 sequential tasks, each fibo(10)
    python windmill.py fibo33x10   # 10 sequential tasks, each fibo(33)
    python windmill.py light400    # 400 sequential tasks returning a constant

Each runs its flow once; every step is a real `@task`, called sequentially.
"""

import sys

from prefect import flow, task


def fibo(n: int) -> int:
    if n <= 1:
        return n
    return fibo(n - 1) + fibo(n - 2)


@task
def fibo_task(n: int) -> int:
    return fibo(n)


@task
def light_task() -> int:
    return 1


@flow
def fibo10x40() -> list[int]:
    return [fibo_task(10) for _ in range(40)]


@flow
def fibo33x10() -> list[int]:
    return [fibo_task(33) for _ in range(10)]


@flow
def light400() -> int:
    return sum(light_task() for _ in range(400))


FLOWS = {"fibo10x40": fibo10x40, "fibo33x10": fibo33x10, "light400": light400}
EXPECTED = {"fibo10x40": [55] * 40, "fibo33x10": [3524578] * 10, "light400": 400}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in FLOWS:
        sys.exit(f"usage: python windmill.py {{{','.join(FLOWS)}}}")
    name = sys.argv[1]
    result = FLOWS[name]()
    assert result == EXPECTED[name], result
