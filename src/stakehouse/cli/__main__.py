"""``python -m stakehouse.cli``: the same commands as the ``stakehouse`` script."""

from stakehouse.cli import main

main()
