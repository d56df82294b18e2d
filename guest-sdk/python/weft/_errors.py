"""The errors a flow or task gives the host, and those it gets back."""


class Error(Exception):
    """An error with an explicit retry decision.

    A flow or task may raise any exception; weft treats it as retryable (a
    task's or deployment's retries apply). Raise ``weft.Error.fatal(...)``
    when retrying cannot help, for instance because the input is wrong.
    """

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.message = message
        self.retryable = retryable

    @classmethod
    def fatal(cls, message: str) -> "Error":
        """An error that no retry will cure."""
        return cls(message, retryable=False)

    @classmethod
    def retryable_error(cls, message: str) -> "Error":
        """An error that a retry may cure (a timeout, a service away)."""
        return cls(message, retryable=True)


class TaskError(Error):
    """A task component's error, as the host returned it to the flow."""


def to_wit_error(error: BaseException):
    """The WIT error for any exception: ``weft.Error`` keeps its decision."""
    from wit_world.imports.types import Error as WitError

    if isinstance(error, Error):
        return WitError(message=error.message, retryable=error.retryable)
    message = str(error) or type(error).__name__
    return WitError(message=f"{type(error).__name__}: {message}", retryable=True)
