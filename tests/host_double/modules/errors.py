"""Double of modules/errors.py: ``report`` prints like the host (``*** message`` + traceback)."""

import sys
import textwrap
import traceback

exception_records: list = []


def report(message: str, *, exc_info: bool = False) -> None:
    _, exc, _ = sys.exc_info()
    if exc is not None:
        exception_records.append(exc)
    for line in message.splitlines():
        print("***", line, file=sys.stderr)
    if exc_info:
        print(textwrap.indent(traceback.format_exc(), "    "), file=sys.stderr)
        print("---", file=sys.stderr)
