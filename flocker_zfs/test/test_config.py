"""
Tests for :mod:`flocker_zfs._config`.
"""

import functools
import importlib
import os
from importlib.metadata import EntryPoint

import yaml
from eliot.testing import assertHasAction, capture_logging
from hypothesis import HealthCheck, given, settings, strategies as st
from pyrsistent import PMap, PVector, freeze, pmap
from twisted.trial.unittest import SynchronousTestCase

from .._actions import CONFIG_LOAD
from .._config import (
    DEFAULT_CONFIG, MAX_CONFIG_BYTES, AgentConfig, ZFSSettings, load_config, parse_config,
    shown, zfs_settings)
from .._plugin import FLOCKER_BACKEND, find_backend
from .._ssh import SSHConfig
from ..errors import ConfigError, InvalidName
from . import plugin_example
from .test_files import not_regular_files

SOURCE = "/etc/flocker/agent.yml"
#: The fix when --config names something that is not a configuration file.
WRONG_FILE_FIX = "Give the path of the agent's configuration file (--config PATH)."
EXAMPLE_MODULE = "flocker_zfs.test.plugin_example"


def _entry_points(group):
    return [EntryPoint(name="example", group=group,
                       value=EXAMPLE_MODULE + ":FLOCKER_BACKEND"),
            EntryPoint(name="other", group=group, value=EXAMPLE_MODULE + ":PLAIN_BACKEND")]


def _import_only_example(name):
    # The property tests must not import whatever module a random name
    # happens to spell.
    if name == EXAMPLE_MODULE:
        return importlib.import_module(name)
    raise ModuleNotFoundError("No module named %r" % (name,), name=name)


#: A lookup with two injected entry points and no other imports.
FIND = functools.partial(find_backend, entry_points=_entry_points,
                         import_module=_import_only_example)


def parse(text, source=SOURCE):
    return parse_config(text, source=source, find_backend=FIND)


def zfs(**keys):
    """
    :return: an agent.yml text with a ``dataset`` section for zfs holding ``keys``.
    """
    return yaml.safe_dump({"dataset": dict({"backend": "zfs"}, **keys)})


class ClearErrorMixin(object):
    """
    Assertions on what a user sees of a ``ConfigError``.
    """

    def assertClearError(self, error, source=SOURCE):
        """
        ``error`` is a ``ConfigError`` whose message is one line that starts
        with the source, quotes no traceback and stays short.
        """
        self.assertIsInstance(error, ConfigError)
        message = str(error)
        self.assertTrue(message.startswith(source + ": "), message)
        self.assertNotIn("\n", message)
        self.assertNotIn("\r", message)
        self.assertNotIn("Traceback", message)
        self.assertLess(len(message), 1500, message)
        self.assertTrue(error.fix)
        return message

    def assertParseError(self, text, *expected, **kwargs):
        """
        Parsing ``text`` fails with a clear error whose message holds every
        string in ``expected``.

        :return: the message.
        """
        kind = kwargs.pop("kind", ConfigError)
        with self.assertRaises(kind) as caught:
            parse(text, **kwargs)
        message = self.assertClearError(caught.exception, kwargs.get("source", SOURCE))
        for part in expected:
            self.assertIn(part, message)
        return message


class ParseConfigTests(ClearErrorMixin, SynchronousTestCase):
    """
    Tests for :func:`parse_config` on good documents.
    """

    def test_defaults(self):
        """
        ``backend: zfs`` alone gives every documented default.
        """
        config = parse("dataset:\n  backend: zfs\n")
        self.assertEqual(
            config.settings,
            ZFSSettings(pool="flocker", mount_root="/flocker",
                        node_file="/etc/flocker/node.json",
                        ssh_identity="/etc/flocker/id_rsa_flocker",
                        ssh_known_hosts="/etc/flocker/known_hosts", ssh_port=22,
                        ssh_cipher=None, deployment="/etc/flocker/deployment.yml",
                        poll_interval=10.0, max_parallel=4, replication_interval=60.0,
                        max_backoff=300.0, stop_grace=30.0, query_timeout=60.0,
                        lock_dir="/run/flocker-zfs"))
        self.assertEqual(ZFSSettings(), config.settings)

    def test_record(self):
        """
        The record names the source, the backend as written and its description.
        """
        config = parse("dataset: {backend: zfs}")
        self.assertIsInstance(config, AgentConfig)
        self.assertEqual((config.source, config.backend, config.description),
                         (SOURCE, "zfs", FLOCKER_BACKEND))

    def test_default_source(self):
        """
        Text parsed without a source is named ``<string>`` in the record and
        in errors.
        """
        self.assertEqual(parse_config("dataset: {backend: zfs}").source, "<string>")
        with self.assertRaises(ConfigError) as caught:
            parse_config("dataset: {}")
        self.assertClearError(caught.exception, "<string>")

    def test_every_key(self):
        """
        Every key of the zfs section is read into the settings.
        """
        config = parse(
            "dataset:\n"
            "  backend: zfs\n"
            "  pool: tank\n"
            "  mount_root: /srv/data\n"
            "  node_file: /var/lib/flocker/node.json\n"
            "  ssh_identity: /root/.ssh/flocker\n"
            "  ssh_known_hosts: /root/.ssh/flocker_hosts\n"
            "  ssh_port: 2222\n"
            "  ssh_cipher: aes128-gcm@openssh.com\n"
            "  deployment: /srv/deployment.yml\n"
            "  poll_interval: 2.5\n"
            "  max_parallel: 16\n"
            "  replication_interval: 300\n"
            "  max_backoff: 120\n"
            "  stop_grace: 0\n"
            "  query_timeout: 15.5\n")
        self.assertEqual(
            config.settings,
            ZFSSettings(pool="tank", mount_root="/srv/data",
                        node_file="/var/lib/flocker/node.json",
                        ssh_identity="/root/.ssh/flocker",
                        ssh_known_hosts="/root/.ssh/flocker_hosts", ssh_port=2222,
                        ssh_cipher="aes128-gcm@openssh.com",
                        deployment="/srv/deployment.yml", poll_interval=2.5,
                        max_parallel=16, replication_interval=300.0, max_backoff=120.0,
                        stop_grace=0.0, query_timeout=15.5))

    def test_whole_seconds(self):
        """
        A whole number of seconds is read as a float.
        """
        settings = parse(zfs(poll_interval=3, replication_interval=90)).settings
        self.assertEqual((settings.poll_interval, type(settings.poll_interval)), (3.0, float))
        self.assertEqual((settings.replication_interval, type(settings.replication_interval)),
                         (90.0, float))

    def test_null_cipher(self):
        """
        ``ssh_cipher: null`` means ssh's default.
        """
        self.assertIsNone(parse(zfs(ssh_cipher=None)).settings.ssh_cipher)

    def test_port_bounds(self):
        """
        Ports 1 and 65535 are accepted.
        """
        self.assertEqual(parse(zfs(ssh_port=1)).settings.ssh_port, 1)
        self.assertEqual(parse(zfs(ssh_port=65535)).settings.ssh_port, 65535)

    def test_host_keys_pass_through(self):
        """
        Keys the host agent owns are kept in the document, unchanged and frozen.
        """
        config = parse(
            "version: 1\n"
            "control-service: {hostname: control.example, port: 4524}\n"
            "logging: [a, {b: c}]\n"
            "dataset: {backend: zfs, pool: tank}\n")
        self.assertEqual(config.document, freeze({
            "version": 1,
            "control-service": {"hostname": "control.example", "port": 4524},
            "logging": ["a", {"b": "c"}],
            "dataset": {"backend": "zfs", "pool": "tank"},
        }))
        self.assertIsInstance(config.document, PMap)
        self.assertIsInstance(config.document["logging"], PVector)
        self.assertIsInstance(config.document["logging"][1], PMap)

    def test_host_duplicates_left_alone(self):
        """
        A key of the host agent's may repeat; only its own parser judges that.
        """
        config = parse("version: 1\nversion: 2\ndataset: {backend: zfs}\n")
        self.assertEqual(config.document["version"], 2)

    def test_aliases(self):
        """
        Anchors and aliases work, including merge keys.
        """
        config = parse("common: &c {pool: tank, ssh_port: 2200}\n"
                       "dataset:\n  <<: *c\n  backend: zfs\n  pool: other\n")
        self.assertEqual((config.settings.pool, config.settings.ssh_port), ("other", 2200))

    def test_bytes(self):
        """
        UTF-8 bytes are accepted, with or without a byte order mark.
        """
        text = "# é\ndataset: {backend: zfs, pool: tank}\n"
        for data in [text.encode("utf-8"), b"\xef\xbb\xbf" + text.encode("utf-8")]:
            self.assertEqual(parse(data).settings.pool, "tank")

    def test_ssh_config(self):
        """
        ``ZFSSettings.ssh_config`` gives the SSH client settings.
        """
        settings = parse(zfs(ssh_identity="/k", ssh_known_hosts="/h", ssh_port=2022,
                             ssh_cipher="aes128-ctr")).settings
        self.assertEqual(settings.ssh_config(),
                         SSHConfig(identity="/k", known_hosts="/h", port=2022,
                                   ciphers="aes128-ctr"))

    def test_no_side_effects(self):
        """
        Reading a valid configuration creates neither the node identity nor
        the mount root.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        config = parse(zfs(node_file=base + "/node.json", mount_root=base + "/mnt",
                           deployment=base + "/deployment.yml"))
        self.assertEqual(config.settings.node_file, base + "/node.json")
        self.assertEqual(os.listdir(base), [])

    def test_other_backend(self):
        """
        Another backend's section goes to its own ``settings`` hook, without
        ``backend``, and the record holds what the hook returned.
        """
        config = parse("dataset: {backend: example, greeting: hello, loud: true}")
        self.assertIs(config.description, plugin_example.FLOCKER_BACKEND)
        self.assertEqual(config.backend, "example")
        self.assertEqual(config.settings, pmap({"greeting": "hello", "loud": True}))

    def test_module_backend(self):
        """
        ``backend:`` may be a dotted module path; the record keeps it as written.
        """
        config = parse("dataset: {backend: %s, greeting: hi}" % (EXAMPLE_MODULE,))
        self.assertEqual(config.backend, EXAMPLE_MODULE)
        self.assertIs(config.description, plugin_example.FLOCKER_BACKEND)

    def test_default_lookup(self):
        """
        Without an injected lookup, ``zfs`` and module paths are found.
        """
        self.assertIs(parse_config("dataset: {backend: zfs}").description, FLOCKER_BACKEND)
        config = parse_config("dataset: {backend: %s, greeting: hi}" % (EXAMPLE_MODULE,))
        self.assertIs(config.description, plugin_example.FLOCKER_BACKEND)

    def test_settings_direct(self):
        """
        :func:`zfs_settings` checks a section given as a mapping, too.
        """
        self.assertEqual(zfs_settings({"pool": "tank"}).pool, "tank")
        with self.assertRaises(ConfigError) as caught:
            zfs_settings({"ssh_port": "22"}, "here")
        self.assertIn("here: dataset.ssh_port", str(caught.exception))


class StructureErrorTests(ClearErrorMixin, SynchronousTestCase):
    """
    :func:`parse_config` explains a document of the wrong shape.
    """

    def test_empty(self):
        """
        An empty document, or one of only comments, is reported as empty.
        """
        for text in ["", "   \n\n", "# just a comment\n", b""]:
            self.assertParseError(text, "empty", "dataset")

    def test_top_level_not_mapping(self):
        """
        A top level that is not a mapping is named by its kind.
        """
        self.assertParseError("- dataset\n- zfs\n", "top level must be a mapping", "a list")
        self.assertParseError("zfs\n", "top level must be a mapping", "a string", "'zfs'")
        self.assertParseError("~\n", "top level must be a mapping", "not null")
        self.assertParseError("42", "an integer", "42")

    def test_missing_section(self):
        """
        A document without ``dataset`` says so and shows an example.
        """
        self.assertParseError("version: 1\n", "no dataset section",
                              "dataset: {backend: zfs, pool: flocker}")

    def test_empty_section(self):
        """
        ``dataset:`` with nothing under it asks for the backend.
        """
        self.assertParseError("dataset:\n", "dataset section is empty", "backend: zfs")

    def test_section_not_mapping(self):
        """
        A ``dataset`` that is not a mapping is named by its kind.
        """
        self.assertParseError("dataset: zfs\n", "dataset must be a mapping", "a string")
        self.assertParseError("dataset: [backend, zfs]\n", "dataset must be a mapping",
                              "a list")

    def test_missing_backend(self):
        """
        A section without ``backend`` names the key.
        """
        self.assertParseError("dataset: {pool: tank}\n", "dataset.backend is missing",
                              "backend: zfs")

    def test_backend_not_string(self):
        """
        A ``backend`` that is not a string names the key, the type expected
        and the type found.
        """
        self.assertParseError("dataset: {backend: 3}\n", "dataset.backend must be a string",
                              "not an integer (3)")
        self.assertParseError("dataset: {backend: [zfs]}\n", "dataset.backend", "a list")

    def test_unknown_backend(self):
        """
        An unknown backend lists the known ones: zfs and the entry points,
        suggests the closest, and says that a module path works.
        """
        message = self.assertParseError(
            "dataset: {backend: zsf}\n", "dataset.backend", "unknown backend 'zsf'",
            "did you mean zfs?", "known backends: zfs, example, other",
            "dotted module path", "FLOCKER_BACKEND", "flocker.backends", kind=ConfigError)
        self.assertNotIn("no module", message)

    def test_unknown_module(self):
        """
        A module path that names no module is an unknown backend too.
        """
        self.assertParseError("dataset: {backend: no.such.module}\n",
                              "unknown backend 'no.such.module'", "no module named",
                              "known backends: zfs, example, other")

    def test_required_key(self):
        """
        A key the backend requires is named when missing.
        """
        self.assertParseError("dataset: {backend: example}\n", "dataset.greeting missing",
                              "'example' requires greeting")

    def test_hook_error_names_source(self):
        """
        An error from another backend's hook that does not name the file is
        given the file's name.
        """
        message = self.assertParseError("dataset: {backend: example, greeting: x, y: 1}\n",
                                        "unknown keys for the example backend")
        self.assertEqual(message.count(SOURCE), 1)
        message = self.assertParseError("dataset: {backend: example, greeting: 1}\n",
                                        "dataset.greeting must be a string")
        self.assertEqual(message.count(SOURCE), 1)


class KeyErrorTests(ClearErrorMixin, SynchronousTestCase):
    """
    :func:`parse_config` names the key, the expected type, the type found
    and the file for every bad value of the zfs section.
    """

    def test_string_port(self):
        """
        A quoted port names the key, both types and the file, and suggests
        dropping the quotes.
        """
        self.assertParseError(zfs(ssh_port="22"), "dataset.ssh_port must be an integer",
                              "not a string ('22')", "without quotes")

    def test_bool_is_not_int(self):
        """
        ``true`` is not a port, nor a count.
        """
        self.assertParseError(zfs(ssh_port=True), "dataset.ssh_port must be an integer",
                              "not a boolean (true)")
        self.assertParseError(zfs(max_parallel=False), "dataset.max_parallel must be an "
                              "integer", "not a boolean (false)")
        self.assertParseError(zfs(poll_interval=True), "dataset.poll_interval must be a "
                              "number", "not a boolean")

    def test_float_port(self):
        """
        A port with a fraction is refused.
        """
        self.assertParseError(zfs(ssh_port=22.5), "dataset.ssh_port", "not a number (22.5)")

    def test_port_range(self):
        """
        Ports outside 1..65535 are refused, naming the key.
        """
        for port in [0, -1, 65536, 10 ** 30]:
            self.assertParseError(zfs(ssh_port=port), "dataset.ssh_port",
                                  "from 1 to 65535")

    def test_poll_interval(self):
        """
        ``poll_interval`` must be positive and finite (at most a day).
        """
        for text in ["0", "-1", "0.0", ".inf", "-.inf", ".nan", "86401", "9" * 400]:
            self.assertParseError("dataset: {backend: zfs, poll_interval: %s}" % (text,),
                                  "dataset.poll_interval", "greater than 0")
        self.assertEqual(parse(zfs(poll_interval=0.25)).settings.poll_interval, 0.25)

    def test_replication_interval(self):
        """
        ``replication_interval`` must be positive and at most a day, or
        ``null`` for never (0 is refused: it could mean either "always" or
        "never"); the message says how to turn it off.
        """
        for text in ["0", "-1", ".inf", ".nan", "86401", "9" * 400]:
            self.assertParseError("dataset: {backend: zfs, replication_interval: %s}"
                                  % (text,), "dataset.replication_interval", "greater than 0",
                                  "or null for never")
        self.assertParseError(zfs(replication_interval="60"),
                              "dataset.replication_interval must be a number or null",
                              "without quotes")
        self.assertParseError(zfs(replication_interval=True),
                              "dataset.replication_interval must be a number or null",
                              "not a boolean")
        self.assertIsNone(parse("dataset: {backend: zfs, replication_interval: null}")
                          .settings.replication_interval)
        self.assertEqual(parse(zfs(replication_interval=0.5)).settings.replication_interval,
                         0.5)

    def test_agent_durations(self):
        """
        ``max_backoff`` and ``query_timeout`` must be positive, ``stop_grace``
        at least 0 (cancel at once), all at most a day; whole numbers are
        read as floats.
        """
        for key, low, bad in [("max_backoff", "greater than 0", ["0"]),
                              ("query_timeout", "greater than 0", ["0", "0.0"]),
                              ("stop_grace", "from 0", [])]:
            for text in ["-1", ".inf", ".nan", "86401", "null"] + bad:
                self.assertParseError("dataset: {backend: zfs, %s: %s}" % (key, text),
                                      "dataset.%s" % (key,))
            self.assertParseError("dataset: {backend: zfs, %s: -1}" % (key,), low,
                                  "at most 86400")
            self.assertParseError(zfs(**{key: "5"}), "dataset.%s must be a number" % (key,),
                                  "without quotes")
            value = getattr(parse(zfs(**{key: 7})).settings, key)
            self.assertEqual((value, type(value)), (7.0, float))
        self.assertEqual(parse(zfs(stop_grace=0)).settings.stop_grace, 0.0)

    def test_exponent_hint(self):
        """
        ``1e3`` is a string in YAML 1.1; the fix says how to write it.
        """
        self.assertParseError("dataset: {backend: zfs, poll_interval: 1e3}",
                              "dataset.poll_interval must be a number", "a string ('1e3')",
                              "1.0e+3")

    def test_max_parallel(self):
        """
        ``max_parallel`` must be at least 1.
        """
        for value in [0, -3]:
            self.assertParseError(zfs(max_parallel=value), "dataset.max_parallel",
                                  "at least 1")

    def test_pool(self):
        """
        The pool name is checked like every pool name (``InvalidName``).
        """
        for pool in ["-r", "mirror", "a/b", "tank pool", ""]:
            self.assertParseError(zfs(pool=pool), "dataset.pool: invalid pool name",
                                  kind=InvalidName)
        self.assertParseError(zfs(pool=7), "dataset.pool must be a string",
                              "not an integer (7)")

    def test_mount_root(self):
        """
        The mount root must be absolute and normalised.
        """
        for path in ["flocker", "/a/../b", "/a/", ""]:
            self.assertParseError(zfs(mount_root=path), "dataset.mount_root",
                                  kind=InvalidName)

    def test_paths(self):
        """
        The file settings must be absolute, normalised paths.
        """
        for key in ["node_file", "ssh_identity", "ssh_known_hosts", "deployment", "lock_dir"]:
            for path in ["relative/file", "/a/../b", "/etc/flocker/", "/a\nb"]:
                self.assertParseError(zfs(**{key: path}), "dataset.%s" % (key,))
            self.assertParseError(zfs(**{key: ["/a"]}), "dataset.%s must be a string" % (key,),
                                  "not a list")

    def test_ssh_paths_ssh_would_misread(self):
        """
        Paths given to ssh may not hold characters ssh expands or splits on.
        """
        self.assertParseError(zfs(ssh_identity="/a b"), "dataset.ssh_identity",
                              "ssh would misread", kind=InvalidName)
        self.assertParseError(zfs(ssh_known_hosts="/root/%h"), "dataset.ssh_known_hosts",
                              kind=InvalidName)

    def test_cipher(self):
        """
        An unknown cipher lists the choices.
        """
        self.assertParseError(zfs(ssh_cipher="rot13"), "dataset.ssh_cipher",
                              "aes128-gcm@openssh.com")
        self.assertParseError(zfs(ssh_cipher=1), "dataset.ssh_cipher must be a string or null")

    def test_unknown_key(self):
        """
        An unknown key is named, with the closest known key, and the fix
        lists the known keys.
        """
        message = self.assertParseError(zfs(sshport=22), "unknown key dataset.sshport",
                                        "did you mean ssh_port?", "for backend zfs")
        for key in ["backend", "pool", "mount_root", "node_file", "ssh_identity",
                    "ssh_known_hosts", "ssh_port", "ssh_cipher", "deployment",
                    "poll_interval", "max_parallel", "replication_interval",
                    "max_backoff", "stop_grace", "query_timeout"]:
            self.assertIn(key, message.split("Fix:")[1])

    def test_unknown_keys(self):
        """
        Every unknown key is named (up to five, then a count); a key far
        from any known one gets no suggestion.
        """
        message = self.assertParseError(zfs(pol="x", version=1), "unknown keys",
                                        "dataset.pol (did you mean pool?)", "dataset.version")
        self.assertNotIn("dataset.version (did you mean", message)
        many = {"zz%d" % (i,): i for i in range(40)}
        self.assertParseError(zfs(**many), "and 35 more")

    def test_odd_keys(self):
        """
        Keys that are not strings, or hold control characters, are shown
        quoted and on one line.
        """
        self.assertParseError("dataset: {backend: zfs, 1: x}", "unknown key dataset.1")
        self.assertParseError('dataset: {backend: zfs, "a\\nb": x}',
                              "unknown key dataset.'a\\nb'")

    def test_huge_values_cut(self):
        """
        A huge value is cut short in the message.
        """
        for value in ["x" * 100000, list(range(10000)), {str(i): i for i in range(5000)},
                      [[[[[[1]]]]]]]:
            message = self.assertParseError(zfs(ssh_port=value), "dataset.ssh_port")
            self.assertLess(len(message), 400)
        message = self.assertParseError(zfs(mount_root="/" + "x" * 100000), "dataset.mount_root")
        self.assertLess(len(message), 400)
        message = self.assertParseError("dataset: {backend: zfs, ssh_port: %s}" % ("9" * 5000),
                                        "too many digits")
        self.assertLess(len(message), 400)

    def test_newline_in_value(self):
        """
        A value holding line breaks is quoted on one line.
        """
        self.assertParseError(zfs(pool="a\nb\u2028c"), "dataset.pool", "'a\\nb\\u2028c'")


class MalformedTests(ClearErrorMixin, SynchronousTestCase):
    """
    :func:`parse_config` gives the line and column (from 1) of malformed YAML.
    """

    def test_bad_indent(self):
        """
        A key indented less than its siblings.
        """
        self.assertParseError("dataset:\n    backend: zfs\n  pool: tank\n",
                              "malformed YAML at line 3, column 3")

    def test_tab(self):
        """
        A tab used for indentation.
        """
        self.assertParseError("dataset:\n\tbackend: zfs\n",
                              "malformed YAML at line 2, column 1", "'\\t'")

    def test_unclosed(self):
        """
        An unclosed flow sequence, with the context where it started.
        """
        self.assertParseError("dataset:\n  backend: zfs\n  x: [a, b\n",
                              "malformed YAML at line 4, column 1",
                              "while parsing a flow sequence at line 3, column 6")

    def test_escape_out_of_range(self):
        """
        A ``\\U`` escape beyond Unicode (which PyYAML's scanner does not
        check) is malformed YAML with its position, not a crash.
        """
        self.assertParseError('dataset:\n  backend: zfs\n  pool: "\\UFFFFFFFF"\n',
                              "malformed YAML at line 3", "escape sequence out of range")

    def test_several_documents(self):
        """
        More than one document.
        """
        self.assertParseError("dataset: {backend: zfs}\n---\nb: 2\n",
                              "malformed YAML at line 2, column 1",
                              "expected a single document")

    def test_unsafe_tag(self):
        """
        Python object tags are refused (``safe_load`` rules).
        """
        self.assertParseError("x: !!python/object/apply:os.system [id]\n"
                              "dataset: {backend: zfs}\n",
                              "malformed YAML at line 1, column 4", "python/object")

    def test_bad_value(self):
        """
        A value that the safe constructor cannot build is shown with its position.
        """
        self.assertParseError("dataset: {backend: zfs}\nwhen: 2001-13-45\n",
                              "line 2, column 7", "'2001-13-45'", "timestamp")
        self.assertParseError("dataset:\n  backend: zfs\n  flag: !!bool maybe\n",
                              "line 3, column 9", "'maybe'", "bool")

    def test_unhashable_key(self):
        """
        A list used as a key.
        """
        self.assertParseError("? [a]\n: b\n", "line 1, column 3", "unhashable key")

    def test_control_character(self):
        """
        A NUL character, which YAML does not allow.
        """
        self.assertParseError("dataset:\n  backend: z\x00fs\n",
                              "malformed YAML at line 2, column 13", "#x0000")

    def test_not_utf8(self):
        """
        Bytes that are not UTF-8 are named with their position.
        """
        self.assertParseError(b"dataset:\n  pool: t\xe9nk\n", "not UTF-8",
                              "byte 0xe9 at line 2, column 10")

    def test_duplicate_key(self):
        """
        A key repeated in the dataset section is an error (YAML would keep
        the last silently).
        """
        self.assertParseError("dataset:\n  backend: zfs\n  pool: a\n  pool: b\n",
                              "line 4, column 3: duplicate key dataset.pool",
                              "first at line 3, column 3")

    def test_duplicate_section(self):
        """
        A second dataset section is an error.
        """
        self.assertParseError("dataset: {backend: zfs}\nversion: 1\ndataset: {backend: x}\n",
                              "line 3, column 1: duplicate key dataset",
                              "first at line 1, column 1")

    def test_recursive(self):
        """
        An alias inside its own anchor is refused.
        """
        self.assertParseError("a: &a [1, *a]\ndataset: {backend: zfs}\n", "contains itself")

    def test_deep(self):
        """
        Nesting too deep to read is refused, not a crash.
        """
        self.assertParseError("[" * 5000 + "]" * 5000, "nested too deeply")
        self.assertParseError("a: " + "{a: " * 3000 + "1" + "}" * 3000, "nested too deeply")

    def test_billion_laughs(self):
        """
        Aliases that would expand exponentially are read once each.
        """
        lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 30):
            lines.append("l%d: &l%d [%s]" % (i, i, ", ".join(["*l%d" % (i - 1,)] * 10)))
        config = parse("\n".join(lines) + "\ndataset: {backend: zfs}\n")
        self.assertEqual(len(config.document["l29"]), 10)


class LoadConfigTests(ClearErrorMixin, SynchronousTestCase):
    """
    Tests for :func:`load_config`.
    """

    def write(self, data, name="agent.yml"):
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        path = os.path.join(base, name)
        with open(path, "wb") as handle:
            handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        return path

    def assertLoadError(self, path, *expected):
        with self.assertRaises(ConfigError) as caught:
            load_config(path, find_backend=FIND)
        message = self.assertClearError(caught.exception, path)
        for part in expected:
            self.assertIn(part, message)
        return message

    def test_default_path(self):
        """
        The default is ``/etc/flocker/agent.yml``.
        """
        self.assertEqual(DEFAULT_CONFIG, "/etc/flocker/agent.yml")
        self.assertEqual(load_config.__defaults__[0], DEFAULT_CONFIG)

    def test_load(self):
        """
        A file is read and checked; its path is the source.
        """
        path = self.write(zfs(pool="tank"))
        config = load_config(path)
        self.assertEqual((config.source, config.settings.pool), (path, "tank"))

    def test_errors_name_file(self):
        """
        Errors in the content name the file.
        """
        path = self.write(zfs(ssh_port="x"))
        self.assertLoadError(path, "dataset.ssh_port must be an integer")

    def assertReadError(self, path, summary, fix):
        """
        Loading ``path`` fails before it is parsed, with one line naming
        what the file is and where (:func:`flocker_zfs._files.read_bounded`).
        """
        with self.assertRaises(ConfigError) as caught:
            load_config(path, find_backend=FIND)
        self.assertEqual(caught.exception.summary(), summary)
        self.assertIn(fix, caught.exception.fix)
        self.assertNotIn("\n", str(caught.exception))

    def test_missing(self):
        """
        A missing file says so, and how to make it or point elsewhere.
        """
        path = os.path.abspath(self.mktemp())
        self.assertReadError(path, "cannot read configuration file %s: no such file" % (path,),
                             "or give another path with --config.")

    def test_missing_directory(self):
        """
        A path through a regular file says why it cannot be read.
        """
        path = self.write("x: 1\n") + "/agent.yml"
        self.assertReadError(path, "cannot read configuration file %s: not a directory"
                             % (path,), WRONG_FILE_FIX)

    def test_not_regular(self):
        """
        A directory, a FIFO (not waited for) or a device is not a
        configuration file.
        """
        for path, kind in not_regular_files(self):
            self.assertReadError(path, "configuration file %s is not a regular file but %s"
                                 % (path, kind), WRONG_FILE_FIX)

    def test_unreadable(self):
        """
        A file whose read fails names the system's reason.
        """
        self.assertReadError("/proc/self/mem", "cannot read configuration file /proc/self/mem: "
                             "input/output error", WRONG_FILE_FIX)

    def test_empty(self):
        """
        An empty file is named as empty.
        """
        self.assertLoadError(self.write(b""), "empty")

    def test_not_utf8(self):
        """
        A file in another encoding is named as not UTF-8.
        """
        self.assertLoadError(self.write(b"dataset: {backend: zfs}\n# \xff\n"), "not UTF-8",
                             "line 2, column 3")

    def test_too_large(self):
        """
        A file over the size limit is refused before it is parsed.
        """
        path = self.write(b"#" * (MAX_CONFIG_BYTES + 1))
        self.assertReadError(path, "configuration file %s is larger than 1048576 bytes (1M), "
                             "more than such a file ever holds" % (path,), WRONG_FILE_FIX)

    @capture_logging(None)
    def test_logged(self, logger):
        """
        Loading is an eliot ``CONFIG_LOAD`` action with the path and the backend.
        """
        path = self.write(zfs())
        load_config(path)
        assertHasAction(self, logger, CONFIG_LOAD, True, {"path": path}, {"backend": "zfs"})

    @capture_logging(None)
    def test_logged_failure(self, logger):
        """
        A configuration error fails the ``CONFIG_LOAD`` action.
        """
        path = self.write("dataset: {backend: zfs, pool: -r}\n")
        self.assertRaises(InvalidName, load_config, path)
        assertHasAction(self, logger, CONFIG_LOAD, False, {"path": path},
                        {"exception": "flocker_zfs.errors.InvalidName"})


# -- garbage in, a clear error out -------------------------------------------------

_SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-2 ** 70, 2 ** 70)
            | st.floats() | st.text(max_size=20)
            | st.sampled_from(["zfs", "/flocker", "/a b", "-r", "22", "1e3", ".inf", "~"]))

#: Anything yaml.safe_dump can write.
_STRUCTURES = st.recursive(
    _SCALARS,
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(st.text(max_size=10) | st.integers(), children,
                                        max_size=4)),
    max_leaves=12)

_GOOD = {
    "pool": st.sampled_from(["flocker", "tank", "p.1:x-y"]),
    "ssh_identity": st.just("/etc/flocker/id_rsa_flocker"),
    "ssh_known_hosts": st.just("/etc/flocker/known_hosts"),
    "ssh_port": st.integers(1, 65535),
    "ssh_cipher": st.sampled_from([None, "aes128-ctr", "aes128-ctr,aes256-ctr"]),
    "deployment": st.just("/etc/flocker/deployment.yml"),
    "poll_interval": st.floats(0.001, 86400) | st.integers(1, 86400),
    "max_parallel": st.integers(1, 64),
    "replication_interval": st.none() | st.floats(0.001, 86400) | st.integers(1, 86400),
    "max_backoff": st.floats(0.001, 86400) | st.integers(1, 86400),
    "stop_grace": st.floats(0, 86400) | st.integers(0, 86400),
    "query_timeout": st.floats(0.001, 86400) | st.integers(1, 86400),
}


def _mostly(usual, other):
    """
    ``usual`` three times in four. (``st.one_of`` flattens nested
    ``one_of`` branches, so repeating a branch does not weight it.)
    """
    return st.integers(0, 3).flatmap(lambda n: usual if n else other)


#: Mostly zfs, so the section's keys are checked; sometimes anything else.
_BACKENDS = _mostly(st.just("zfs"), st.sampled_from(
    ["example", "other", "zsf", "no.such", EXAMPLE_MODULE, ""]) | _SCALARS)

#: Keys no zfs section has, or only another backend's.
_JUNK = _mostly(st.just({}), st.fixed_dictionaries(
    {}, optional={"sshport": _SCALARS, "greeting": _SCALARS, "loud": _SCALARS,
                  "zz": _STRUCTURES}))


@st.composite
def _sections(draw):
    """
    A dataset section: each key absent, good (more often) or garbage,
    sometimes with unknown keys. The node file and mount root are added by
    the test.
    """
    section = {"backend": draw(_BACKENDS)}
    section.update(draw(st.fixed_dictionaries({}, optional={
        key: _mostly(good, _STRUCTURES) for key, good in _GOOD.items()})))
    section.update(draw(_JUNK))
    return section


_SECTIONS = _sections()

#: An edit of the text: (position, characters removed, text inserted).
_EDITS = st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 3),
                            st.text(max_size=4) | st.sampled_from(
                                ["\t", ":", "- ", "[", "{", "&a ", "*a", "!!", "\n  ", "'"])),
                  max_size=3)

_GARBAGE = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _edit(text, edits):
    for position, removed, inserted in edits:
        at = position % (len(text) + 1)
        text = text[:at] + inserted + text[at + removed:]
    return text


class ReExportTests(SynchronousTestCase):
    """
    ``_plugin`` imports ``clip`` and ``shown`` from ``_config``; they live in
    ``_yamlsource`` (and ``one_line`` in ``_files``), so ``_config`` keeps
    them importable.
    """

    def test_message_helpers(self):
        """
        ``_config.clip``, ``shown`` and ``one_line`` are the helpers
        themselves, and ``clip`` keeps a message short and on one line.
        """
        from .. import _config, _files, _yamlsource
        self.assertEqual((_config.clip, _config.shown, _config.one_line),
                         (_yamlsource.clip, _yamlsource.shown, _files.one_line))
        self.assertEqual(_config.clip("a\nb" + "x" * 200, 10), "a\\nbxxx...")


class GarbageTests(ClearErrorMixin, SynchronousTestCase):
    """
    Whatever :func:`parse_config` and :func:`load_config` are given, they
    return a record or raise a clear ``ConfigError``, and they create no file.
    """

    def sandbox(self):
        """
        :return: an empty directory; the node file and mount root point into it.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        return base

    def check(self, data, base, source=SOURCE):
        """
        Parse ``data``: the outcome is a record or a clear error, and
        ``base`` stays empty.
        """
        try:
            config = parse(data, source=source)
        except ConfigError as error:
            self.assertClearError(error, source)
        else:
            self.assertIsInstance(config, AgentConfig)
            self.assertEqual(config.source, source)
            self.assertIsInstance(config.document, PMap)
        self.assertEqual(os.listdir(base), [])

    def placed(self, section, base):
        section = dict(section)
        section.setdefault("node_file", base + "/node.json")
        section.setdefault("mount_root", base + "/mnt")
        return section

    @_GARBAGE
    @given(st.text())
    def test_text(self, text):
        """
        Random text.
        """
        self.check(text, self.sandbox())

    @_GARBAGE
    @given(st.binary())
    def test_bytes(self, data):
        """
        Random bytes.
        """
        self.check(data, self.sandbox())

    @_GARBAGE
    @given(_STRUCTURES)
    def test_structures(self, document):
        """
        Random YAML documents.
        """
        self.check(yaml.safe_dump(document), self.sandbox())

    @_GARBAGE
    @given(_STRUCTURES, _STRUCTURES)
    def test_random_section(self, section, host):
        """
        A random value as the dataset section, next to random host keys.
        """
        self.check(yaml.safe_dump({"version": host, "dataset": section}), self.sandbox())

    @_GARBAGE
    @given(_SECTIONS, _STRUCTURES)
    def test_sections(self, section, host):
        """
        Sections near a valid one: the record holds the values given, or
        the error names a key of the section.
        """
        base = self.sandbox()
        text = yaml.safe_dump({"control-service": host, "dataset": self.placed(section, base)})
        self.check(text, base)

    @_GARBAGE
    @given(_SECTIONS, _EDITS)
    def test_edited(self, section, edits):
        """
        Valid-looking documents with random edits.
        """
        base = self.sandbox()
        text = yaml.safe_dump({"version": 1, "dataset": self.placed(section, base)},
                              default_flow_style=False)
        self.check(_edit(text, edits), base)

    @_GARBAGE
    @given(_SECTIONS, _EDITS, st.booleans())
    def test_files(self, section, edits, as_bytes):
        """
        :func:`load_config` of a file of garbage: a record or a clear error
        naming the file; the file is the only thing in its directory after.
        """
        base = self.sandbox()
        text = _edit(yaml.safe_dump({"dataset": self.placed(section, base)}), edits)
        directory = self.sandbox()
        path = os.path.join(directory, "agent.yml")
        data = text.encode("utf-8")
        if as_bytes:
            data = data[:len(data) // 2] + b"\xff\xfe" + data[len(data) // 2:]
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            config = load_config(path, find_backend=FIND)
        except ConfigError as error:
            self.assertClearError(error, path)
        else:
            self.assertEqual(config.source, path)
        self.assertEqual(os.listdir(base), [])
        self.assertEqual(os.listdir(directory), ["agent.yml"])

    @_GARBAGE
    @given(st.fixed_dictionaries({}, optional=_GOOD))
    def test_valid_sections(self, keys):
        """
        Every combination of good values is accepted and read as written.
        """
        base = self.sandbox()
        config = parse(zfs(**self.placed(keys, base)))
        for key, value in keys.items():
            self.assertEqual(getattr(config.settings, key), value)
        self.assertEqual(os.listdir(base), [])


class ShownTests(SynchronousTestCase):
    """
    Tests for :func:`shown`, which quotes values in messages.
    """

    def test_yaml_spelling(self):
        """
        Booleans and null are spelled as in YAML.
        """
        self.assertEqual([shown(True), shown(False), shown(None)], ["true", "false", "null"])

    @given(_STRUCTURES)
    def test_short_one_line(self, value):
        """
        Any value is shown on one line in at most 80 characters.
        """
        text = shown(value)
        self.assertLessEqual(len(text), 80)
        self.assertTrue(text.isprintable())
