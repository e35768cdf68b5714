# test-case-name: flocker_zfs.test.test_names
"""
Validation of every name that can reach a command line.

Deliberately narrower than ZFS: dataset ids are canonical lowercase UUIDs,
snapshot names we accept never start with ``-`` (``zfs`` parses options with
a permuting ``getopt``), and pool names follow ZFS's own rules.  Each
validator returns the value or raises an :class:`~flocker_zfs.errors.InvalidName`
whose message quotes the bad value.
"""

import os
import re

from .errors import InvalidDatasetId, InvalidName, NameTooLong

#: ZFS_MAX_DATASET_NAME_LEN is 256 including the terminating NUL.
MAX_NAME_BYTES = 255

#: The longest snapshot short name we generate or accept.
MAX_SNAPSHOT_NAME = 64

_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_POOL = re.compile(r"\A[A-Za-z][A-Za-z0-9_.:-]*\Z")
_SNAPSHOT = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.:-]*\Z")
_RESERVED_PREFIXES = ("mirror", "raidz", "draid", "spare")
_RESERVED_POOLS = ("log",)


def is_dataset_id(value):
    """
    :return: ``True`` if ``value`` is a canonical lowercase UUID string.
    """
    return isinstance(value, str) and _UUID.match(value) is not None


def shown(value, limit=80):
    """
    :return: ``repr(value)``, cut to ``limit`` characters, for quoting a bad
        value in a one-line message.
    """
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def validate_dataset_id(value):
    """
    :return: ``value`` if it is a valid dataset id.
    :raises InvalidDatasetId: otherwise.
    """
    if not is_dataset_id(value):
        raise InvalidDatasetId("invalid dataset id %s: not a lowercase UUID" % (shown(value),))
    return value


def validate_pool_name(value):
    """
    :return: ``value`` if ZFS would accept it as a pool name and it leaves
        room for ``<pool>/<uuid>@<snapshot>``.
    :raises InvalidName: otherwise.
    """
    if not isinstance(value, str) or not _POOL.match(value):
        raise InvalidName(
            "invalid pool name %s: must start with a letter and contain only "
            "letters, digits, '_', '.', ':' and '-'" % (shown(value),))
    # zfs_namecheck.c pool_namecheck(): these prefixes and names are reserved.
    if value.startswith(_RESERVED_PREFIXES) or value in _RESERVED_POOLS:
        raise InvalidName("invalid pool name %s: reserved by ZFS" % (shown(value),))
    longest = len(value.encode("utf-8")) + 1 + 36 + 1 + MAX_SNAPSHOT_NAME
    if longest > MAX_NAME_BYTES:
        raise NameTooLong(
            "pool name %s is too long: <pool>/<dataset id>@<snapshot> would be "
            "%d bytes, over ZFS's limit of %d" % (shown(value), longest, MAX_NAME_BYTES))
    return value


def validate_snapshot_name(value):
    """
    :return: ``value`` if it is an acceptable snapshot short name.
    :raises InvalidName: otherwise.
    """
    if not isinstance(value, str) or not _SNAPSHOT.match(value):
        raise InvalidName(
            "invalid snapshot name %s: use letters, digits, '_', '.', ':' and "
            "'-', not starting with '-' or '.'" % (shown(value),))
    if len(value) > MAX_SNAPSHOT_NAME:
        raise NameTooLong("snapshot name %s is longer than %d characters"
                          % (shown(value), MAX_SNAPSHOT_NAME))
    return value


_CONTROL_NAMES = {"\n": "a newline", "\t": "a tab", "\r": "a carriage return",
                  "\x00": "a NUL byte", "\x1b": "an escape"}


def describe_controls(value):
    """
    :return: the control characters in ``value``, each named and shown as
        ``repr`` shows it: ``"a newline, shown as \\n"``.
    """
    found = sorted(set(c for c in value if ord(c) < 32 or ord(c) == 127))
    return "; ".join("%s, shown as %s" % (_CONTROL_NAMES.get(c, "a control character"),
                                          repr(c)[1:-1]) for c in found)


def validate_mount_root(value):
    """
    :return: ``value`` if it is an absolute, normalised path with no
        ``..``, no control characters and components of at most 255 bytes.
    :raises InvalidName: otherwise, with a fix about writing the path.
    """
    def invalid(problem, fix, kind=InvalidName):
        return kind("invalid mount_root %s: %s" % (shown(value), problem), fix=fix)
    if not isinstance(value, str) or not value.startswith("/"):
        raise invalid("must be an absolute path",
                      "Give mount_root as an absolute path, such as /flocker.")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise invalid("contains control characters",
                      "Remove the control characters (%s) from mount_root."
                      % (describe_controls(value),))
    parts = value.split("/")
    normal = os.path.normpath(value)
    if ".." in parts or "." in parts:
        raise invalid("must not contain '.' or '..'",
                      "Write mount_root without '.' or '..' components, such as %r."
                      % (normal,))
    if normal != value and value != "/":
        raise invalid("not normalised (expected %r)" % (normal,),
                      "Write mount_root without repeated or trailing '/', such as %r."
                      % (normal,))
    if any(len(p.encode("utf-8")) > 255 for p in parts):
        raise invalid("a component is over 255 bytes",
                      "Shorten each part of mount_root to at most 255 bytes.", NameTooLong)
    return value


def dataset_name(pool, dataset_id):
    """
    :return: the ZFS name ``<pool>/<dataset_id>`` after validating both parts.
    """
    return "%s/%s" % (validate_pool_name(pool), validate_dataset_id(dataset_id))


def snapshot_name(pool, dataset_id, name):
    """
    :return: the ZFS name ``<pool>/<dataset_id>@<name>`` after validation.
    """
    return "%s@%s" % (dataset_name(pool, dataset_id), validate_snapshot_name(name))
