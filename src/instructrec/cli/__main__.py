"""``python -m instructrec.cli``: the `instructrec` command, for launchers that take a module
(``accelerate launch -m instructrec.cli tune ...``, ``torchrun -m instructrec.cli ...``)."""

from instructrec.cli import main

main()
