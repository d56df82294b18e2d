"""A flow calling a trivial task 1,000 times, one after another.

`python tasks_1000.py` runs it once.
"""

from prefect import flow, task


@task
def square(x: int) -> int:
    return x * x


@flow
def tasks_1000() -> int:
    total = 0
    for i in range(1000):
        total += square(i)
    return total


if __name__ == "__main__":
    result = tasks_1000()
    assert result == sum(i * i for i in range(1000)), result
