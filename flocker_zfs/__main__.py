"""``python -m flocker_zfs``: the ``flocker-zfs`` command line."""

from ._cli import main

main()
