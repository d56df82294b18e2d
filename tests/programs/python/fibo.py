"""A Python task component for the benchmarks: the naive recursive fibo(n)."""

import weft


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@weft.task_component
def fibo(n: int) -> int:
    return fib(n)
