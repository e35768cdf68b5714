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
:class:`~flocker_zfs.errors.ConfigError` whose message is one line. That line
starts with the file's name and then says where the problem is (the key as
``dataset.ssh_port``, or the line and column of malformed YAML).
"""

import datetime
import difflib
import os
import reprlib
import stat
from collections.abc import Mapping, Sequence, Set

import yaml
from eliot import start_action
from pyrsistent import PClass, PMap, field, pmap, pset, pvector

from ._actions import CONFIG_LOAD
from ._ssh import SSHConfig, validate_ciphers, validate_path, validate_port
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


# -- showing values in messages ------------------------------------------------

class _Repr(reprlib.Repr):
    """
    Short reprs, built without formatting the whole value. Python refuses to
    format an int of more than 4300 digits, and YAML can contain one.
    """

    def __init__(self):
        reprlib.Repr.__init__(self)
        self.maxstring = 60
        self.maxother = 60
        self.maxlevel = 2
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 4

    def repr_int(self, value, level):
        if value.bit_length() > 128:
            return "<integer of %d bits>" % (value.bit_length(),)
        return reprlib.Repr.repr_int(self, value, level)


_REPR = _Repr()


def one_line(text):
    """
    :return: ``text`` with control characters and line breaks escaped, so a
        message stays on one line whatever it quotes.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def clip(text, limit=100):
    """
    :return: ``text`` on one line, cut to about ``limit`` characters.
    """
    text = one_line(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def shown(value):
    """
    :return: a short, one-line rendering of a configuration value for a
        message. Scalars are spelled as in YAML (``true``, ``null``), and
        everything is cut to about 80 characters.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return clip(_REPR.repr(value), 80)


def kind_of(value):
    """
    :return: what ``value`` is, in YAML's words (``"a string"``, ``"a
        boolean"``, ``"a list"``, ...).
    """
    kinds = [
        (bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
        (bytes, "binary data"), (datetime.datetime, "a timestamp"),
        (datetime.date, "a date"), (Mapping, "a mapping"), (Set, "a set"),
        (Sequence, "a list"),
    ]
    if value is None:
        return "null"
    for kind, words in kinds:
        if isinstance(value, kind):
            return words
    return "a %s" % (type(value).__name__,)


def key_path(key, section=SECTION):
    """
    :return: how a message names ``key`` of ``section``: ``dataset.ssh_port``.
    """
    if isinstance(key, str) and key and key.isprintable() and len(key) <= 60:
        return "%s.%s" % (section, key)
    return "%s.%s" % (section, shown(key))


def config_error(source, message, fix=None, kind=ConfigError):
    """
    :return: a ``kind`` error (not raised) whose message starts with
        ``source``, all on one line.
    """
    return kind(one_line("%s: %s" % (source, message)),
                fix=None if fix is None else one_line(fix))


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


# -- reading YAML ----------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """
    ``yaml.safe_load``'s loader, with the same tags. The only change is that a
    value the safe constructor cannot build, and reports with a plain Python
    exception, now fails with a ``ConstructorError`` that has the value's
    position. Examples are the date ``2001-13-45``, ``!!bool maybe`` and an
    integer too long to convert.
    """

    def construct_object(self, node, deep=False):
        try:
            return yaml.SafeLoader.construct_object(self, node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as error:
            reason = str(error)
            if "integer string conversion" in reason:
                reason = "too many digits"
            raise yaml.constructor.ConstructorError(
                None, None, "cannot read %s as %s (%s)" % (
                    shown(node.value) if isinstance(node.value, str) else "this value",
                    node.tag.rsplit(":", 1)[-1], clip(reason)),
                node.start_mark)


def _position(mark):
    return "line %d, column %d" % (mark.line + 1, mark.column + 1)


def _malformed(source, error, text):
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "malformed YAML"
        if error.context and error.problem and error.context_mark is not None:
            problem = "%s (%s at %s)" % (problem, error.context, _position(error.context_mark))
        where = (_position(mark) + ": ") if mark is not None else ""
    elif isinstance(error, yaml.reader.ReaderError):
        before = text[:error.position]
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        where = "line %d, column %d: " % (line, column)
        problem = "unacceptable character #x%04x: %s" % (error.character, error.reason)
    else:
        where, problem = "", str(error)
    return config_error(source, "malformed YAML at %s%s" % (where, clip(problem, 200)),
                        fix="Correct the YAML at that position. %s" % (_FORMAT_FIX,))


def _duplicates(mapping, only=None):
    """
    :return: ``(key, mark, first mark)`` for the first key repeated in a
        mapping node, or ``None``. YAML would silently keep only the last
        value. Merge keys (``<<``) may repeat keys on purpose, so they are
        not counted.
    """
    seen = {}
    for key_node, _ in mapping.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
            continue
        if only is not None and key_node.value not in only:
            continue
        identity = (key_node.tag, key_node.value)
        if identity in seen:
            return key_node.value, key_node.start_mark, seen[identity]
        seen[identity] = key_node.start_mark
    return None


def _check_duplicates(root, source):
    if not isinstance(root, yaml.MappingNode):
        return
    checks = [(root, {SECTION}, "")]
    for key_node, value_node in root.value:
        if (isinstance(key_node, yaml.ScalarNode) and key_node.value == SECTION
                and isinstance(value_node, yaml.MappingNode)):
            checks.append((value_node, None, SECTION + "."))
    for node, only, prefix in checks:
        found = _duplicates(node, only)
        if found is not None:
            key, mark, first = found
            raise config_error(
                source, "%s: duplicate key %s (first at %s)" % (
                    _position(mark), clip(prefix + key, 80), _position(first)),
                fix="Keep one of them: YAML would silently use only the last.")


def _load_yaml(text, source):
    """
    :return: the document, or ``_NOTHING`` if the text holds none.
    """
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return _NOTHING
        _check_duplicates(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise _malformed(source, error, text) from None
    except RecursionError:
        raise config_error(source, "the YAML is nested too deeply to read",
                           fix="Flatten the structure. %s" % (_FORMAT_FIX,))
    finally:
        if loader is not None:
            loader.dispose()


_NOTHING = object()


def _freeze(value, source):
    """
    :return: ``value`` made immutable: pmap, pvector, pset. A value that an
        alias shares is frozen once. An alias inside its own anchor (a
        recursive document) is refused.
    """
    done = {}
    active = set()

    def freeze(item):
        if not isinstance(item, (dict, list, set, tuple)):
            return item
        ident = id(item)
        if ident in done:
            return done[ident]
        if ident in active:
            raise config_error(source, "the YAML document contains itself through an alias "
                                       "(an anchor used inside its own value)",
                               fix="Remove the recursive alias.")
        active.add(ident)
        if isinstance(item, dict):
            result = pmap({key: freeze(val) for key, val in item.items()})
        elif isinstance(item, set):
            result = pset(item)
        elif isinstance(item, tuple):
            result = tuple(freeze(val) for val in item)
        else:
            result = pvector(freeze(val) for val in item)
        active.discard(ident)
        done[ident] = result
        return result
    try:
        return freeze(value)
    except RecursionError:
        raise config_error(source, "the YAML is nested too deeply to read",
                           fix="Flatten the structure. %s" % (_FORMAT_FIX,))


def decode_text(data, source):
    """
    :param bytes data: the file's content.
    :return: ``data`` as text. A leading byte order mark is dropped.
    :raises ConfigError: it is not UTF-8 (naming the line and column of the
        first bad byte).
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = data[:error.start]
        line = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode("utf-8-sig", "replace")) + 1
        raise config_error(
            source, "not UTF-8 text (byte 0x%02x at line %d, column %d)"
            % (data[error.start], line, column),
            fix="Save the file as UTF-8.")


# -- the document ---------------------------------------------------------------

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
    document = _load_yaml(text, source)
    if document is _NOTHING:
        raise config_error(source, "the file is empty (it holds no YAML document)",
                           fix="Add a %s section. %s" % (SECTION, _FORMAT_FIX))
    if not isinstance(document, dict):
        raise config_error(
            source, "the top level must be a mapping (key: value lines), not %s (%s)"
            % (kind_of(document), shown(document)), fix=_FORMAT_FIX)
    document = _freeze(document, source)
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
    fix = "Give the path of the agent's configuration file (--config PATH)."
    try:
        status = os.stat(path)
        if stat.S_ISDIR(status.st_mode):
            raise config_error(path, "is a directory, not a configuration file", fix=fix)
        if not stat.S_ISREG(status.st_mode):
            raise config_error(path, "is not a regular file", fix=fix)
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise config_error(path, "no such file",
                           fix="Create it (%s), or give another path with --config."
                               % (_FORMAT_FIX,))
    except PermissionError:
        raise config_error(path, "cannot read the file: permission denied",
                           fix="Run as root, or make the file readable by this user.")
    except OSError as error:
        raise config_error(path, "cannot read the file: %s"
                                 % (os.strerror(error.errno) if error.errno else error,),
                           fix=fix)
    if len(data) > MAX_CONFIG_BYTES:
        raise config_error(path, "the file is larger than %d bytes; is this the right file?"
                                 % (MAX_CONFIG_BYTES,), fix=fix)
    return data


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
