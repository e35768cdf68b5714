# test-case-name: flocker_zfs.test.test_files
"""
Reading the small files an operator points flocker-zfs at (the deployment
file, ``known_hosts``, ``authorized_keys``, a public key, init's state)
without trusting the path: a directory, a device such as ``/dev/zero``, a
pipe or a huge file is refused with a one-line error instead of blocking or
filling memory.
"""

import os
import stat

from ._sizes import format_size
from .errors import ConfigError

#: ``known_hosts``, ``authorized_keys``, public keys, init's state file: a
#: few thousand keys at most.
MAX_KEYS_FILE_BYTES = 4 * 1024 * 1024

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def check_regular(what, path, mode, fix):
    """
    :param int mode: the ``st_mode`` of the file at ``path``.
    :raises ConfigError: it is not a regular file, naming what it is.
    """
    if not stat.S_ISREG(mode):
        raise ConfigError("%s %s is %s, not a regular file" % (what, path, _kind(mode)),
                          fix=fix)


def read_bounded(path, limit, what, fix):
    """
    Read a whole regular file of at most ``limit`` bytes.

    :param str what: what the file is, for the message (``"deployment file"``).
    :param str fix: the fix of a refusal.
    :return: its ``bytes``.
    :raises ConfigError: it is not a regular file, or larger than ``limit``.
    :raises OSError: it cannot be opened or read (missing, permissions):
        callers say what that means for them.
    """
    check_regular(what, path, os.stat(path).st_mode, fix)
    # O_NONBLOCK: if a pipe replaced the file since the stat, opening it does
    # not wait for a writer; fstat below refuses it.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        check_regular(what, path, os.fstat(fd).st_mode, fix)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ConfigError("%s %s is larger than %s, more than such a file ever holds"
                          % (what, path, format_size(limit)), fix=fix)
    return data
