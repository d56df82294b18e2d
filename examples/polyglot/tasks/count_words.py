"""A Python task component: counts the words of a text."""

import weft


@weft.task_component
def count_words(input: dict) -> list:
    words = input["text"].lower().split()
    weft.log.info("counting words", words=len(words))
    counts: dict[str, int] = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    # The three most common, the first seen first among equals.
    return [[word, count] for word, count in sorted(counts.items(), key=lambda item: -item[1])[:3]]
