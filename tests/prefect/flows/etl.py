"""The classic extract, transform, load flow, as a Prefect user writes it.

Mirrors weft's example flow (examples/etl): `python etl.py` runs it once.
"""

from prefect import flow, get_run_logger, task


@task(retries=3, retry_delay_seconds=1)
def extract() -> list[int]:
    get_run_logger().info("extracting")
    return [1, 2, 3]


@task
def transform(data: list[int]) -> list[int]:
    return [x * 10 for x in data]


@task
def load(data: list[int]) -> None:
    get_run_logger().info(f"Here's your data: {data}")


@flow
def etl() -> list[int]:
    data = extract()
    data = transform(data)
    load(data)
    return data


if __name__ == "__main__":
    result = etl()
    assert result == [10, 20, 30], result
