# test-case-name: flocker_zfs.test.test_files
"""
Reading the small files an operator points flocker-zfs at (``agent.yml``,
the deployment file, the node identity, ``known_hosts``,
``authorized_keys``, a public key, init's state) without trusting the
path: a directory, a device such as ``/dev/zero``, a pipe or a huge file is
refused with a one-line error naming what the file should be, where it is
and what is there instead, never waited on or read.

:func:`read_bounded` is the one reader; ``_yamlsource.read_source`` is its
name for YAML files.
"""

import errno
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

#: The fix when this user may not read a file.
_PERMISSION_FIX = "Run as root, or make the file readable by this user."


def one_line(text):
    """
    :return: ``text`` with control characters and line breaks escaped, so a
        message stays on one line whatever it quotes.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _error(message, fix):
    return ConfigError(one_line(message), fix=one_line(fix))


def _kind(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return "another kind of file"


def check_regular(what, path, mode, fix):
    """
    :param str what: what the file is, for the message (``"ssh identity"``).
    :param int mode: the ``st_mode`` of the file at ``path``.
    :raises ConfigError: it is not a regular file, naming what it is.
    """
    if not stat.S_ISREG(mode):
        raise _error("%s %s is not a regular file but %s" % (what, path, _kind(mode)), fix)


def _reason(error):
    """:return: why an ``OSError`` happened, in lower case, without the path."""
    if error.errno == errno.ENOENT:
        return "no such file"
    reason = os.strerror(error.errno) if error.errno else str(error)
    return reason[:1].lower() + reason[1:]


def read_bounded(path, limit, what, fix, missing_fix=None):
    """
    Read a whole regular file of at most ``limit`` bytes.

    The type is checked before the file is opened and again once it is open
    (non-blocking, so a pipe put there meanwhile is not waited on).

    :param int limit: the most bytes such a file ever holds.
    :param str what: what the file is, for messages (``"deployment file"``).
    :param str fix: the fix of a refusal (wrong kind, too large, unreadable).
    :param missing_fix: the fix when nothing is at ``path``; ``None`` to get
        ``FileNotFoundError`` instead, for a caller that has a default or
        creates the file.
    :return: its ``bytes``.
    :raises ConfigError: it is not a regular file, larger than ``limit``,
        cannot be read (naming why), or is missing and ``missing_fix`` is
        given.
    :raises FileNotFoundError: it is missing and ``missing_fix`` is ``None``.
    """
    try:
        check_regular(what, path, os.stat(path).st_mode, fix)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            check_regular(what, path, os.fstat(fd).st_mode, fix)
            data = handle.read(limit + 1)
    except FileNotFoundError as error:
        if missing_fix is None:
            raise
        raise _error("cannot read %s %s: %s" % (what, path, _reason(error)), missing_fix)
    except OSError as error:
        raise _error("cannot read %s %s: %s" % (what, path, _reason(error)),
                     _PERMISSION_FIX if error.errno in (errno.EACCES, errno.EPERM) else fix)
    if len(data) > limit:
        raise _error("%s %s is larger than %d bytes%s, more than such a file ever holds" % (
            what, path, limit, " (%s)" % (format_size(limit),) if limit >= 1024 else ""), fix)
    return data
