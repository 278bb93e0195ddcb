"""The one error type for bad input data."""

from __future__ import annotations


class DataError(ValueError):
    """Input data is malformed. The message names the file, line or column and what was expected.

    The CLI turns it into a one-line message and exit code 2; it is never shown as a traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        # one line, always: a value quoted into the message may hold line breaks
        message = " ".join(str(message).splitlines())
        where = []
        if source is not None:
            where.append(str(source))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        self.source, self.line, self.column = source, line, column
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
