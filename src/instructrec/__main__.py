"""``python -m instructrec``: the `instructrec` command (same as ``python -m instructrec.cli``)."""

from instructrec.cli import main

main()
