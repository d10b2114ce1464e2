"""The one exception type that reaches users as a one-line message instead of a traceback."""


class PadlibError(Exception):
    """A user-facing error: the message names the culprit and the fix; entry points exit non-zero."""
