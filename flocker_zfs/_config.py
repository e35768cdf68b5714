# test-case-name: flocker_zfs.test.test_config
"""
The agent's configuration file (``agent.yml``), read into records.

The file belongs to the host dataset agent. Only its ``dataset:`` section
belongs to us: ``backend:`` picks the storage backend, and that backend's
description checks the other keys (see :mod:`flocker_zfs._plugin`). Every
other top-level key (``version``, ``control-service``, ...) stays in
:attr:`AgentConfig.document` just as it was read.

Parsing has no side effects. It creates no file and runs no command, and it
imports a module only when ``backend:`` names one. Every problem raises a
:class:`~flocker_zfs.errors.ConfigError` whose message is one line naming
the file. A problem in what it says starts with the file's name and then
says where the problem is (the key as ``dataset.ssh_port``, or the line and
column of malformed YAML).  Reading
the file and its YAML (sizes, decoding, positions, repeated keys) is
:mod:`flocker_zfs._yamlsource`; this module checks what the document says.
"""

import difflib
import os

import yaml
from eliot import start_action
from pyrsistent import PClass, PMap, field, pmap

from ._actions import CONFIG_LOAD
from ._dslock import DEFAULT_LOCK_DIR
from ._files import read_bounded
from ._ssh import SSHConfig, validate_ciphers, validate_path, validate_port
from ._yamlsource import (
    NOTHING, config_error, decode_text, freeze, kind_of, load_yaml, one_line, shown)
from ._yamlsource import clip  # noqa: F401 (re-exported for callers of this module)
from .errors import ConfigError
from .names import validate_mount_root, validate_pool_name
from .node import DEFAULT_NODE_FILE

#: Where the agent's configuration is unless ``--config`` says otherwise.
DEFAULT_CONFIG = "/etc/flocker/agent.yml"

#: Configuration files are small. This limit stops a wrong path (a log or a
#: disk image) from being read into memory.
MAX_CONFIG_BYTES = 1024 * 1024

#: The section of the document that selects and configures the backend.
SECTION = "dataset"

_EXAMPLE = "dataset: {backend: zfs, pool: flocker}"
_FORMAT_FIX = ("See docs/configuration.rst for the format; the smallest file is "
               "`%s`." % (_EXAMPLE,))


# -- messages ---------------------------------------------------------------------

def key_path(key, section=SECTION):
    """
    :return: how a message names ``key`` of ``section``: ``dataset.ssh_port``.
    """
    if isinstance(key, str) and key and key.isprintable() and len(key) <= 60:
        return "%s.%s" % (section, key)
    return "%s.%s" % (section, shown(key))


def in_source(error, source, where=None):
    """
    Put ``source`` (and ``where``, such as ``dataset.pool``) in front of a
    :class:`ConfigError` raised by a check that did not know them. The
    error's class and ``fix`` are kept.

    :return: the new error (not raised).
    """
    text = error.summary()
    if where is not None:
        text = "%s: %s" % (where, text)
    if not text.startswith(source + ": "):
        text = "%s: %s" % (source, text)
    try:
        return type(error)(one_line(text), fix=one_line(error.fix))
    except (TypeError, AttributeError):
        # A plugin's own subclass with another constructor, or a read-only fix.
        return ConfigError(one_line(text), fix=one_line(error.fix))


# -- the zfs backend's settings --------------------------------------------------

def _invariant(check):
    def invariant(value):
        try:
            check(value)
        except ConfigError as error:
            return (False, str(error))
        return (True, "")
    return invariant


def _absolute_path(what):
    def check(value):
        if not isinstance(value, str) or not value.startswith("/"):
            raise ConfigError("invalid %s %s: must be an absolute path" % (what, shown(value)))
        if not value.isprintable():
            raise ConfigError("invalid %s %s: contains control characters"
                              % (what, shown(value)))
        if os.path.normpath(value) != value or value == "/":
            raise ConfigError("invalid %s %s: must be a normalised path to a file, without "
                              "'.', '..' or a trailing '/'" % (what, shown(value)))
        return value
    return check


def _ssh_path(what):
    return lambda value: validate_path(what, value)


#: The longest interval or timeout accepted (a day); it also keeps huge
#: YAML integers from overflowing the conversion to float.
MAX_SECONDS = MAX_POLL_INTERVAL = 86400


def _duration(key, zero=False, null=None):
    """
    :param zero: whether 0 is accepted.
    :param null: what ``null`` means (e.g. ``"never"``), or ``None`` if it is
        refused.
    :return: a check of a number of seconds for ``key``: finite, more than 0
        (or at least 0) and at most :data:`MAX_SECONDS`.
    """
    def check(value):
        if value is None and null is not None:
            return value
        if (not isinstance(value, bool) and isinstance(value, (int, float))
                and (0 <= value if zero else 0 < value) and value <= MAX_SECONDS):
            return value
        raise ConfigError("invalid %s %s: must be a number of seconds %s and at most %d%s"
                          % (key, shown(value), "from 0" if zero else "greater than 0",
                             MAX_SECONDS, "" if null is None else ", or null for " + null))
    return check


_poll_interval = _duration("poll_interval")


def _max_parallel(value):
    if type(value) is not int or value < 1:
        raise ConfigError("invalid max_parallel %s: must be a whole number of at least 1"
                          % (shown(value),))
    return value


def _seconds(value):
    # YAML reads "10" as an int; the record keeps seconds as a float.
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


class ZFSSettings(PClass):
    """
    The checked ``dataset:`` section for ``backend: zfs``.

    Each field is checked when the record is built. :func:`zfs_settings`
    builds one from the YAML section, with messages that name the file and
    the key.

    :ivar str pool: the local pool that holds the datasets.
    :ivar str mount_root: datasets mount at ``<mount_root>/<dataset_id>``.
    :ivar str node_file: this node's identity file. It is created when the
        backend is first built, never while the configuration is read.
    :ivar str ssh_identity: private key for reaching peers.
    :ivar str ssh_known_hosts: the only file peers' host keys are checked
        against.
    :ivar int ssh_port: the peers' sshd port.
    :ivar ssh_cipher: ``None`` (ssh's default), or one or more of
        :data:`flocker_zfs._ssh.CIPHERS`, separated by commas.
    :ivar str deployment: the reference agent's desired-state file.
    :ivar float poll_interval: seconds between the agent's iterations.
    :ivar int max_parallel: how many datasets the agent changes at once.
    :ivar replication_interval: seconds between the agent's pushes of new
        data to the replicas of each dataset this node owns (``float``), or
        ``None`` for never.
    :ivar float max_backoff: the agent's longest wait between iterations
        after failures.
    :ivar float stop_grace: seconds a stopping agent lets changes in flight
        finish before cancelling them (0: cancel at once).
    :ivar float query_timeout: seconds another node has to answer the
        agent's request for its state.
    :ivar str lock_dir: the per-dataset lock files that the agent, the
        command line and ``peer-serve`` share, so that no two of them change
        one dataset at once.
    """

    pool = field(type=str, initial="flocker", invariant=_invariant(validate_pool_name))
    mount_root = field(type=str, initial="/flocker", invariant=_invariant(validate_mount_root))
    node_file = field(type=str, initial=DEFAULT_NODE_FILE,
                      invariant=_invariant(_absolute_path("node_file")))
    ssh_identity = field(type=str, initial="/etc/flocker/id_rsa_flocker",
                         invariant=_invariant(_ssh_path("ssh_identity")))
    ssh_known_hosts = field(type=str, initial="/etc/flocker/known_hosts",
                            invariant=_invariant(_ssh_path("ssh_known_hosts")))
    ssh_port = field(type=int, initial=22, invariant=_invariant(validate_port))
    ssh_cipher = field(type=(str, type(None)), initial=None,
                       invariant=_invariant(validate_ciphers))
    deployment = field(type=str, initial="/etc/flocker/deployment.yml",
                       invariant=_invariant(_absolute_path("deployment")))
    poll_interval = field(type=float, initial=10.0, factory=_seconds,
                          invariant=_invariant(_poll_interval))
    max_parallel = field(type=int, initial=4, invariant=_invariant(_max_parallel))
    replication_interval = field(
        type=(float, type(None)), initial=60.0, factory=_seconds,
        invariant=_invariant(_duration("replication_interval", null="never")))
    max_backoff = field(type=float, initial=300.0, factory=_seconds,
                        invariant=_invariant(_duration("max_backoff")))
    stop_grace = field(type=float, initial=30.0, factory=_seconds,
                       invariant=_invariant(_duration("stop_grace", zero=True)))
    query_timeout = field(type=float, initial=60.0, factory=_seconds,
                          invariant=_invariant(_duration("query_timeout")))
    lock_dir = field(type=str, initial=DEFAULT_LOCK_DIR,
                     invariant=_invariant(_absolute_path("lock_dir")))

    def ssh_config(self):
        """
        :return: the :class:`~flocker_zfs._ssh.SSHConfig` for reaching peers.
        """
        return SSHConfig(identity=self.ssh_identity, known_hosts=self.ssh_known_hosts,
                         port=self.ssh_port, ciphers=self.ssh_cipher)


_TEXT = ("a string", lambda value: isinstance(value, str))
_TEXT_OR_NULL = ("a string or null", lambda value: value is None or isinstance(value, str))
_INTEGER = ("an integer", lambda value: type(value) is int)
_NUMBER = ("a number", lambda value: (isinstance(value, (int, float))
                                      and not isinstance(value, bool)))
_NUMBER_OR_NULL = ("a number or null", lambda value: value is None or _NUMBER[1](value))

#: key: (expected kind, check, example value for messages).
ZFS_KEYS = {
    "pool": (_TEXT, validate_pool_name, "flocker"),
    "mount_root": (_TEXT, validate_mount_root, "/flocker"),
    "node_file": (_TEXT, _absolute_path("node_file"), DEFAULT_NODE_FILE),
    "ssh_identity": (_TEXT, _ssh_path("ssh_identity"), "/etc/flocker/id_rsa_flocker"),
    "ssh_known_hosts": (_TEXT, _ssh_path("ssh_known_hosts"), "/etc/flocker/known_hosts"),
    "ssh_port": (_INTEGER, validate_port, "22"),
    "ssh_cipher": (_TEXT_OR_NULL, validate_ciphers, "aes128-gcm@openssh.com"),
    "deployment": (_TEXT, _absolute_path("deployment"), "/etc/flocker/deployment.yml"),
    "poll_interval": (_NUMBER, _poll_interval, "10"),
    "max_parallel": (_INTEGER, _max_parallel, "4"),
    "replication_interval": (_NUMBER_OR_NULL, _duration("replication_interval", null="never"),
                             "60"),
    "max_backoff": (_NUMBER, _duration("max_backoff"), "300"),
    "stop_grace": (_NUMBER, _duration("stop_grace", zero=True), "30"),
    "query_timeout": (_NUMBER, _duration("query_timeout"), "60"),
    "lock_dir": (_TEXT, _absolute_path("lock_dir"), DEFAULT_LOCK_DIR),
}


def _unknown_keys(unknown, known, backend, source):
    named = []
    for key in unknown[:5]:
        close = (difflib.get_close_matches(key, known, n=1)
                 if isinstance(key, str) else [])
        named.append(key_path(key) + (" (did you mean %s?)" % (close[0],) if close else ""))
    if len(unknown) > 5:
        named.append("and %d more" % (len(unknown) - 5,))
    return config_error(
        source, "unknown key%s %s for backend %s" % (
            "s" if len(named) > 1 else "", ", ".join(named), backend),
        fix="The %s section of backend %s takes: %s. Keys that the host agent owns "
            "go at the top level, outside %s." % (
                SECTION, backend, ", ".join(["backend"] + sorted(known)), SECTION))


def _quoted_number_hint(expected, value):
    if expected not in (_INTEGER[0], _NUMBER[0], _NUMBER_OR_NULL[0]) or \
            not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    if "e" in value.lower() and "." not in value:
        # YAML 1.1 reads an exponent without a decimal point (1e3) as a string.
        return ", with a decimal point before an exponent (1.0e+3, not 1e3)"
    return ", without quotes"


def zfs_settings(section, source="<string>"):
    """
    Check the ``dataset:`` section for ``backend: zfs``. This is the ``settings``
    hook of the zfs backend's description.

    :param section: the section's keys and values without ``backend``.
    :param str source: the file, for messages.
    :return: a :class:`ZFSSettings`, with defaults for missing keys.
    :raises ConfigError: an unknown key, a value of the wrong type or a bad
        value. The message names the file and the key, such as
        ``dataset.ssh_port``. A bad name keeps its class, such as
        :class:`~flocker_zfs.errors.InvalidName`.
    """
    unknown = sorted((key for key in section if key not in ZFS_KEYS), key=repr)
    if unknown:
        raise _unknown_keys(unknown, list(ZFS_KEYS), "zfs", source)
    values = {}
    for key in sorted(section):
        (expected, accepts), check, example = ZFS_KEYS[key]
        value = section[key]
        if not accepts(value):
            raise config_error(
                source, "%s must be %s, not %s (%s)" % (
                    key_path(key), expected, kind_of(value), shown(value)),
                fix="Write it as %s, for example `%s: %s`%s." % (
                    expected, key, example, _quoted_number_hint(expected, value)))
        try:
            values[key] = check(value)
        except ConfigError as error:
            raise in_source(error, source, key_path(key)) from None
    return ZFSSettings(**values)


# -- the document ---------------------------------------------------------------

def _our_mappings(root):
    """
    The mappings of ``agent.yml`` whose keys must not repeat: the top level
    (only ``dataset`` itself: the rest is the host agent's) and the
    ``dataset`` section.
    """
    if not isinstance(root, yaml.MappingNode):
        return []
    checks = [(root, {SECTION}, "")]
    for key_node, value_node in root.value:
        if (isinstance(key_node, yaml.ScalarNode) and key_node.value == SECTION
                and isinstance(value_node, yaml.MappingNode)):
            checks.append((value_node, None, SECTION + "."))
    return checks


class AgentConfig(PClass):
    """
    A checked ``agent.yml``.

    :ivar str source: the file it was read from (``"<string>"`` when parsed
        from text).
    :ivar str backend: the ``backend:`` value as written, such as ``"zfs"``
        or ``"some.module"``.
    :ivar description: the backend's
        :class:`~flocker_zfs._plugin.BackendDescription`.
    :ivar settings: what the description's ``settings`` hook returned: a
        :class:`ZFSSettings` for ``zfs``.
    :ivar document: the whole document, frozen (``pmap``). The host agent's
        own keys are here unchanged.
    """

    source = field(type=str, mandatory=True)
    backend = field(type=str, mandatory=True)
    description = field(mandatory=True)
    settings = field(mandatory=True)
    document = field(type=PMap, initial=pmap())


def parse_config(text, source="<string>", find_backend=None):
    """
    Read an ``agent.yml`` document and check its ``dataset:`` section.

    :param text: the document, as ``str`` or as UTF-8 ``bytes``.
    :param str source: the file's name, for messages.
    :param find_backend: ``callable(name) -> BackendDescription``. The
        default is :func:`flocker_zfs._plugin.find_backend`. Tests pass their
        own lookup here.
    :return: an :class:`AgentConfig`.
    :raises ConfigError: the problem, in one line that starts with
        ``source``.
    """
    if find_backend is None:
        # Imported here: _plugin imports this module (for ZFSSettings).
        from ._plugin import find_backend
    if isinstance(text, bytes):
        text = decode_text(text, source)
    document = load_yaml(text, source, unique=_our_mappings, format_fix=_FORMAT_FIX)
    if document is NOTHING:
        raise config_error(source, "the file is empty (it holds no YAML document)",
                           fix="Add a %s section. %s" % (SECTION, _FORMAT_FIX))
    if not isinstance(document, dict):
        raise config_error(
            source, "the top level must be a mapping (key: value lines), not %s (%s)"
            % (kind_of(document), shown(document)), fix=_FORMAT_FIX)
    document = freeze(document, source, format_fix=_FORMAT_FIX)
    if SECTION not in document:
        raise config_error(
            source, "there is no %s section, which selects the storage backend" % (SECTION,),
            fix="Add one, for example `%s`." % (_EXAMPLE,))
    section = document[SECTION]
    if section is None:
        raise config_error(source, "the %s section is empty; it needs at least "
                                   "`backend: zfs`" % (SECTION,),
                           fix="Add the backend, for example `%s`." % (_EXAMPLE,))
    if not isinstance(section, PMap):
        raise config_error(
            source, "%s must be a mapping, not %s (%s)" % (SECTION, kind_of(section),
                                                           shown(section)),
            fix="Write the section as keys under it, for example `%s`." % (_EXAMPLE,))
    if "backend" not in section:
        raise config_error(source, "%s is missing; it names the storage backend"
                                   % (key_path("backend"),),
                           fix="Add `backend: zfs` to the %s section." % (SECTION,))
    backend = section["backend"]
    if not isinstance(backend, str):
        raise config_error(
            source, "%s must be a string, not %s (%s)" % (
                key_path("backend"), kind_of(backend), shown(backend)),
            fix="Write the backend's name, for example `backend: zfs`.")
    try:
        description = find_backend(backend)
    except ConfigError as error:
        raise in_source(error, source, key_path("backend")) from None
    keys = section.remove("backend")
    missing = sorted(set(description.required_config) - set(keys))
    if missing:
        raise config_error(
            source, "%s missing: backend %s requires %s" % (
                ", ".join(key_path(key) for key in missing),
                shown(backend), ", ".join(missing)),
            fix="Add %s to the %s section." % (", ".join(missing), SECTION))
    try:
        settings = description.settings(keys, source)
    except ConfigError as error:
        raise in_source(error, source) from None
    return AgentConfig(source=source, backend=backend, description=description,
                       settings=settings, document=document)


def read_config_file(path):
    """
    :return: the bytes of the configuration file at ``path``.
    :raises ConfigError: it is missing, a directory or not a regular file,
        unreadable, or larger than :data:`MAX_CONFIG_BYTES`.
    """
    return read_bounded(
        path, MAX_CONFIG_BYTES, "configuration file",
        fix="Give the path of the agent's configuration file (--config PATH).",
        missing_fix="Create it (%s), or give another path with --config." % (_FORMAT_FIX,))


def load_config(path=DEFAULT_CONFIG, find_backend=None):
    """
    Read and check the configuration file at ``path``, in an eliot
    ``CONFIG_LOAD`` action (fields: ``path``; ``backend`` on success).

    :param str path: the file.
    :param find_backend: as for :func:`parse_config`.
    :return: an :class:`AgentConfig` whose ``source`` is ``path``.
    :raises ConfigError: as :func:`read_config_file` and
        :func:`parse_config`.
    """
    path = os.fsdecode(os.fspath(path))
    with start_action(action_type=CONFIG_LOAD, path=path) as action:
        config = parse_config(read_config_file(path), source=path, find_backend=find_backend)
        action.add_success_fields(backend=config.backend)
        return config
