"""``python -m flocker_zfs``: the ``flocker-zfs`` command line."""

from ._cli import main

if __name__ == "__main__":
    main()
