# test-case-name: flocker_zfs.test.test_node
"""
This node's identity: a UUID created once and kept in a small JSON file
(default ``/etc/flocker/node.json``), so ownership recorded in ZFS
properties survives restarts and renames of the host.

Reading the file is blocking I/O, done once at start-up before the reactor
runs (the CLI and the agent call it), never from reactor callbacks.
"""

import json
import os
import uuid

from ._files import read_bounded
from .errors import ConfigError
from .names import is_dataset_id

DEFAULT_NODE_FILE = "/etc/flocker/node.json"

#: A node identity file holds one small JSON object; a larger file (or
#: ``/dev/zero``) is a wrong path, refused unread.
MAX_NODE_FILE_BYTES = 64 * 1024


def load_node_uuid(path=DEFAULT_NODE_FILE, create=True):
    """
    :param str path: the identity file.
    :param bool create: create the file with a new random UUID if missing.
    :return: the node uuid (``str``).
    :raises ConfigError: the file is unreadable, not a regular file, larger
        than :data:`MAX_NODE_FILE_BYTES`, or malformed, or missing and
        ``create`` is false.
    """
    try:
        raw = read_bounded(path, MAX_NODE_FILE_BYTES, "node identity file",
                           fix="Give this node's identity file (node.json) with --node-file, "
                               "or node_file in agent.yml.")
    except FileNotFoundError:
        if not create:
            raise ConfigError("node identity file %s does not exist" % (path,),
                              fix="It is created on first use by `flocker-zfs create` or "
                                  "`flocker-zfs peer-serve`; restore it from backup if this "
                                  "node owned datasets.")
        return _create(path)
    try:
        value = json.loads(raw.decode("utf-8"))["uuid"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ConfigError("node identity file %s is not JSON of the form "
                          '{"uuid": "<uuid>"}' % (path,),
                          fix="Restore it from backup; a new identity would orphan "
                              "the datasets this node owns.")
    if not is_dataset_id(value):
        raise ConfigError("node identity file %s holds an invalid uuid %r" % (path, value),
                          fix="Restore it from backup.")
    return value


def _create(path):
    value = str(uuid.uuid4())
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        temporary = "%s.tmp-%d" % (path, os.getpid())
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as handle:
            json.dump({"uuid": value}, handle)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        # link, not rename: if another process created it meanwhile, keep theirs.
        try:
            os.link(temporary, path)
        finally:
            os.unlink(temporary)
    except FileExistsError:
        return load_node_uuid(path, create=False)
    except OSError as error:
        raise ConfigError("cannot create node identity file %s: %s"
                          % (path, os.strerror(error.errno)),
                          fix="Run as root, or choose a writable location for the file.")
    return value
