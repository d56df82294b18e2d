"""A Python task component for the polyglot tests: shouts its input."""

import weft


@weft.task_component
def shout(text: str) -> str:
    if not text:
        raise weft.Error.fatal("nothing to shout")
    weft.log.info("shouting", length=len(text))
    return text.upper() + "!"
