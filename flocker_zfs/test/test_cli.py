"""
Tests for :mod:`flocker_zfs._cli` and :mod:`flocker_zfs._clireport`, on the
fake ZFS.
"""

import io
import json
import os
import re
import stat
import subprocess
import sys
import uuid

from eliot import Message, add_destinations, remove_destination, start_action
from twisted.internet.defer import (
    CancelledError, FirstError, fail, gatherResults, maybeDeferred, succeed)
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from .. import _cli
from .._actions import (
    AGENT_CLUSTER_STATE, AGENT_ITERATION, CHANGE_CREATE, CONFIG_LOAD, DISCOVER, START)
from .._cli import run
from .._plugin import BackendDescription
from .._clireport import AgentConsole, Progress, human, status_table
from .._deployer import NodeState, node_state_to_json
from ..errors import OutOfSpace, UnknownHostKey
from ..model import Dataset, PoolState, Snapshot
from ..testing import FakeNetwork, FakeZFS

DATASET = "6f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f"
NODE = "3f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f"
OTHER = "9a2b6f1c-3d4a-4b7c-9e8f-0a1b2c3d4e5f"
MiB = 1024 * 1024

_REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Every subcommand and an option only it (or its group) has.
_COMMAND_OPTIONS = {
    "status": "--json", "create": "--size", "resize": "size", "destroy": "--force",
    "snapshot": "--name", "push": "--ssh-identity", "handoff": "--ssh-known-hosts",
    "recover": "--abort", "agent": "--config", "peer-serve": "--lock-dir",
    "init": "--pool-file", "doctor": "--peer",
}

#: Commands that print a report, so take --json.
_REPORTING = ("status", "create", "resize", "destroy", "snapshot", "push", "handoff",
              "recover", "doctor", "init")


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def _node_file(path, node_uuid=NODE):
    return _write(path, json.dumps({"uuid": node_uuid}) + "\n")


def _cells(row):
    """The cells of a table row (columns are two or more spaces apart)."""
    return re.split(r" {2,}", row.strip())


def _lines(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle]


#: A backend that is not zfs, for ``backend: flocker_zfs.test.test_cli``.
FLOCKER_BACKEND = BackendDescription(name="other", factory=lambda reactor, settings: None,
                                     settings=lambda section, source: dict(section))


class _Failing(object):
    """An ``IRunner`` whose every command raises a programming error."""

    def run(self, argv, errors=()):
        raise RuntimeError("boom\nsecond line")


class _FullPool(object):
    """
    An ``IRunner`` passing commands to ``fake``, except that ``zfs create``
    fails as on a full pool.
    """

    def __init__(self, fake):
        self._fake = fake

    def run(self, argv, errors=()):
        if list(argv[:2]) == ["zfs", "create"]:
            return fail(OutOfSpace(argv, 1, b"cannot create: out of space\n"))
        return self._fake.run(argv, errors)


class _CLICase(SynchronousTestCase):
    """
    A fake pool ``flocker`` and ``cli()`` running one command line on it.
    """

    def setUp(self):
        self.fake = FakeZFS(profile="zfs-fuse")
        self.fake.add_pool("flocker")
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.mount_root = os.path.join(self.base, "mnt")
        self.node_file = os.path.join(self.base, "node.json")
        self.common = ["--pool", "flocker", "--mount-root", self.mount_root,
                       "--node-file", self.node_file]
        # Never the machine's /etc/flocker/agent.yml.
        self.default_config = os.path.join(self.base, "no-agent.yml")
        self.reactor = MemoryReactorClock()
        # eliot keeps what is logged while no destination exists and hands it
        # to the first one added: drop an earlier test's messages, so a
        # --log-file holds only this test's.
        discard = [].append
        add_destinations(discard)
        remove_destination(discard)

    def cli(self, *argv, runner=None, environ=None, common=True):
        out, err = io.StringIO(), io.StringIO()
        argv = list(argv[:1]) + (self.common if common else []) + list(argv[1:])
        status = self.successResultOf(run(
            self.reactor, argv, out, err, runner or self.fake,
            default_config=self.default_config, environ=environ or {}))
        return status, out.getvalue(), err.getvalue()

    def assertOneLineError(self, err, *parts):
        """``err`` is one ``flocker-zfs: error: ... Fix: ...`` line holding ``parts``."""
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith("flocker-zfs: error: "), err)
        self.assertIn(". Fix: ", err)
        self.assertNotIn("Traceback", err)
        for part in parts:
            self.assertIn(part, err)


class CLITests(_CLICase):
    """
    Tests for the subcommands that act on the local pool.
    """

    def test_status_empty(self):
        """
        ``status`` on an empty pool says so, without creating an identity.
        """
        status, out, err = self.cli("status")
        self.assertEqual((status, err), (0, ""))
        self.assertIn("no datasets in pool flocker", out)
        self.assertFalse(os.path.exists(self.node_file))

    def test_create_then_status(self):
        """
        A created dataset shows in the ``status`` table as writable, owned
        by this node, with its size limit, used space, newest snapshot, no
        replicas and its mountpoint; ``--json`` has the same and more.
        """
        status, out, _ = self.cli("create", DATASET, "--size", "64M")
        self.assertEqual((status, out), (0, "created %s (size limit 64.0M) at %s\n" % (
            DATASET, os.path.join(self.mount_root, DATASET))))
        self.cli("snapshot", DATASET, "--name", "first")
        _, table, _ = self.cli("status")
        header, row = table.splitlines()[1:3]
        self.assertEqual(_cells(header)[0:1], ["DATASET"])
        for column in ("OWNER", "STATE", "SIZE LIMIT", "USED", "NEWEST SNAPSHOT",
                       "REPLICAS", "MOUNTPOINT"):
            self.assertIn(column, header)
        cells = _cells(row)
        self.assertEqual(cells[0:4], [DATASET, "this node", "writable", "64.0M"])
        self.assertEqual(cells[5:], ["first", "-", os.path.join(self.mount_root, DATASET)])
        _, raw, _ = self.cli("status", "--json")
        document = json.loads(raw)
        [entry] = document["datasets"]
        node_uuid = document["node_uuid"]
        self.assertEqual(
            (entry["dataset_id"], entry["owner"], entry["owned_here"], entry["state"],
             entry["maximum_size"], entry["newest_snapshot"], entry["replicas"]),
            (DATASET, node_uuid, True, "writable", 64 * MiB, "first", []))
        self.assertIsInstance(entry["snapshots"][0]["guid"], str)

    def test_resize_snapshot_destroy(self):
        """
        ``resize``, ``snapshot`` and ``destroy`` act on the dataset and say so.
        """
        self.cli("create", DATASET)
        status, out, _ = self.cli("resize", DATASET, "1.5G")
        self.assertEqual((status, out[:len("resized")]), (0, "resized"))
        self.assertIn("size limit 1.5G", out)
        status, out, _ = self.cli("snapshot", DATASET, "--name", "first")
        self.assertEqual((status, out), (0, "snapshot %s@first\n" % (DATASET,)))
        self.assertEqual(self.cli("destroy", DATASET), (0, "destroyed %s\n" % (DATASET,), ""))
        self.assertIn("no datasets", self.cli("status")[1])

    def test_json_reports(self):
        """
        ``create``, ``resize``, ``snapshot`` and ``destroy`` with ``--json``
        print one JSON document each, exit 0 and print nothing on stderr.
        """
        results = [self.cli("create", DATASET, "--size", "64M", "--json"),
                   self.cli("resize", DATASET, "none", "--json"),
                   self.cli("snapshot", DATASET, "--name", "s", "--json"),
                   self.cli("destroy", DATASET, "--json")]
        self.assertEqual([(status, err) for status, _, err in results], [(0, "")] * 4)
        created, resized, snapshot, destroyed = [json.loads(out) for _, out, _ in results]
        self.assertEqual((created["dataset_id"], created["maximum_size"], created["state"]),
                         (DATASET, 64 * MiB, "writable"))
        self.assertEqual(resized["maximum_size"], None)
        self.assertEqual((snapshot["dataset_id"], snapshot["name"]), (DATASET, "s"))
        self.assertEqual(destroyed, {"destroyed": DATASET})

    def test_sizes(self):
        """
        ``--size`` and ``resize`` take bytes, K/M/G/T with decimals (in any
        case, with an optional B or iB), or ``none``; the limit reaches the
        dataset exactly.
        """
        self.cli("create", DATASET, "--size", "1048576")
        for text, expected in [("512M", 512 * MiB), ("1.5G", 3 * 512 * MiB), ("none", None),
                               ("2gib", 2048 * MiB), ("1.25T", 1280 * 1024 * MiB),
                               ("NONE", None), ("3145728B", 3 * MiB)]:
            status, out, err = self.cli("resize", DATASET, text, "--json")
            self.assertEqual((text, status, err, json.loads(out)["maximum_size"]),
                             (text, 0, "", expected))

    def test_bad_sizes(self):
        """
        A size that is no size, not whole bytes, below the backend's 1M or
        too large is a usage error naming the argument, before anything runs.
        """
        self.cli("create", DATASET)
        before = len(self.fake.commands)
        for argv, part in [
                (["create", "--size", "lots"], "argument --size: invalid size 'lots': neither"),
                (["create", "--size", "1.5"], "invalid size '1.5': not a whole number of bytes"),
                (["create", "--size", "512K"], "invalid size '512K': below the minimum of 1M"),
                (["resize", DATASET, "0"], "argument size: invalid size '0': not positive"),
                (["resize", DATASET, "--", "-1G"], "invalid size '-1G': not positive"),
                (["resize", DATASET, "8192P"], "invalid size '8192P': too large")]:
            status, out, err = self.cli(*argv)
            self.assertEqual((argv, status, out), (argv, 1, ""))
            self.assertOneLineError(err, part)
        self.assertEqual(len(self.fake.commands), before)

    def test_create_generates_id(self):
        """
        ``create`` without an id makes a new dataset with a fresh uuid.
        """
        status, out, _ = self.cli("create", "--json")
        dataset_id = json.loads(out)["dataset_id"]
        self.assertEqual(str(uuid.UUID(dataset_id)), dataset_id)

    def test_create_empty_id(self):
        """
        ``create ""`` is an invalid dataset id, not a request for a new one:
        only a left-out id makes one up.
        """
        before = len(self.fake.commands)
        status, out, err = self.cli("create", "")
        self.assertEqual((status, out), (1, ""))
        self.assertOneLineError(err, "invalid dataset id ''")
        self.assertEqual(len(self.fake.commands), before)

    def test_user_error_one_line(self):
        """
        A bad dataset id exits 1 with one line naming it and the fix, and
        runs no zfs command.
        """
        before = len(self.fake.commands)
        status, out, err = self.cli("create", "not-a-uuid")
        self.assertEqual((status, out), (1, ""))
        self.assertOneLineError(err, "'not-a-uuid'")
        self.assertEqual(len(self.fake.commands), before)

    def test_error_json(self):
        """
        With ``--json`` a failure also prints a JSON error document on
        stdout, naming the error type, the cause and the fix.
        """
        status, out, err = self.cli("destroy", str(uuid.uuid4()), "--json")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "dataset not found")
        document = json.loads(out)
        self.assertEqual((document["ok"], document["error"]), (False, "DatasetNotFound"))
        self.assertIn("flocker-zfs status", document["fix"])

    def test_missing_pool(self):
        """
        A missing pool exits 1 with the ``zpool create`` fix.
        """
        self.common[1] = "nopool"
        status, _, err = self.cli("status")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "zpool create nopool")

    def test_missing_dataset(self):
        """
        Destroying an unknown dataset exits 1 naming it.
        """
        status, _, err = self.cli("destroy", str(uuid.uuid4()))
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "dataset not found")

    def test_usage_errors(self):
        """
        A wrong command line (unknown command or option, missing or bad
        argument) exits 1 with one line saying what is wrong and which
        ``--help`` to read, and prints no usage text.
        """
        for argv, part, help in [
                (["frobnicate"], "invalid choice: 'frobnicate'", "`flocker-zfs --help`"),
                (["create", "--bogus"], "unrecognized arguments: --bogus",
                 "`flocker-zfs create --help`"),
                (["resize", DATASET], "resize: the following arguments are required: size",
                 "`flocker-zfs resize --help`"),
                (["create", "--size", "lots"], "invalid size 'lots'",
                 "`flocker-zfs create --help`"),
                ([], "required: COMMAND", "`flocker-zfs --help`")]:
            status, out, err = self.cli(*argv, common=False)
            self.assertEqual((argv, status, out), (argv, 1, ""))
            self.assertOneLineError(err, part, help)

    def test_usage_error_json(self):
        """
        A wrong command line with ``--json`` also gets the JSON error.
        """
        status, out, _ = self.cli("create", "--size", "lots", "--json")
        self.assertEqual((status, json.loads(out)["error"]), (1, "UsageError"))

    def test_unexpected_error(self):
        """
        An unexpected exception exits 2 with one line saying where the
        traceback is, and no traceback on stderr.
        """
        status, out, err = self.cli("status", runner=_Failing())
        self.assertEqual((status, out), (2, ""))
        self.assertOneLineError(err, "RuntimeError: boom second line", "FLOCKER_ZFS_DEBUG=1")

    def test_unexpected_error_logged(self):
        """
        With ``--log-file`` the one line names the file, and the file has
        the traceback.
        """
        log = os.path.join(self.base, "log.json")
        status, _, err = self.cli("status", "--log-file", log, runner=_Failing())
        self.assertEqual(status, 2)
        self.assertOneLineError(err, "the log file %s" % (log,))
        [traceback] = [m for m in _lines(log) if m.get("message_type") == "eliot:traceback"]
        self.assertIn("RuntimeError: boom", traceback["traceback"])

    def test_unexpected_error_debug(self):
        """
        ``FLOCKER_ZFS_DEBUG=1`` also prints the traceback on stderr.
        """
        status, _, err = self.cli("status", runner=_Failing(),
                                  environ={"FLOCKER_ZFS_DEBUG": "1"})
        self.assertEqual(status, 2)
        self.assertIn("Traceback (most recent call last)", err)
        self.assertIn("RuntimeError: boom", err)

    def test_interrupted(self):
        """
        A command still running when the reactor shuts down (SIGINT,
        SIGTERM) is cancelled, its zfs command stopped, and it exits 1
        saying so.
        """
        # The pool listing of discover(), after the start-up checks.
        self.fake.hang(lambda argv: argv[:2] == ("zfs", "get") and "refquota" in argv[-2])
        out, err = io.StringIO(), io.StringIO()
        d = run(self.reactor, ["status"] + self.common, out, err, self.fake,
                default_config=self.default_config, environ={})
        self.assertNoResult(d)
        for trigger, args, kwargs in self.reactor.triggers["before"]["shutdown"]:
            trigger(*args, **kwargs)
        self.assertEqual(self.successResultOf(d), 1)
        self.assertEqual([argv[:2] for argv in self.fake.cancelled], [("zfs", "get")])
        self.assertOneLineError(err.getvalue(), "interrupted (SIGINT or SIGTERM) before status",
                                "flocker-zfs recover")

    def test_peer_serve_not_from_run(self):
        """
        ``peer-serve`` is only for sshd: from a terminal it is refused.
        """
        status, _, err = self.cli("peer-serve")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "forced command")


class HelpTests(_CLICase):
    """
    ``--help`` on every command.
    """

    def commands(self):
        parser = _cli._parser(io.StringIO())
        [commands] = [action for action in parser._actions
                      if action.dest == "command"]
        return sorted(commands.choices)

    def test_every_command(self):
        """
        Every subcommand's ``--help`` exits 0 and lists ``--config``,
        ``--log-file``, its own options, and ``--json`` if it reports.
        """
        names = self.commands()
        self.assertEqual(set(_COMMAND_OPTIONS), set(names))
        for name in names:
            status, out, err = self.cli(name, "--help", common=False)
            self.assertEqual((name, status, err), (name, 0, ""))
            self.assertIn("usage: flocker-zfs %s" % (name,), out)
            for option in ("--config", "--log-file", _COMMAND_OPTIONS.get(name, "")):
                self.assertIn(option, out, name)
            self.assertEqual("--json" in out, name in _REPORTING, name)

    def test_ssh_options_shared(self):
        """
        The commands that reach peers describe ``--ssh-identity``,
        ``--ssh-known-hosts`` and ``--ssh-port`` alike, with their defaults.
        """
        helps = {}
        for name in ("push", "handoff", "recover", "init", "doctor"):
            status, out, _ = self.cli(name, "--help", common=False)
            self.assertEqual(status, 0)
            text = " ".join(out.split())
            helps[name] = [text[text.rindex(option):].split(" --")[0]
                           for option in ("--ssh-identity PATH", "--ssh-known-hosts PATH",
                                          "--ssh-port PORT")]
        self.assertEqual(helps["push"][0], "--ssh-identity PATH this node's private key for "
                         "reaching peers (default: the config's, else "
                         "/etc/flocker/id_rsa_flocker)")
        self.assertEqual(len({tuple(lines) for lines in helps.values()}), 1, helps)

    def test_reporting_commands_exist(self):
        """
        The reporting commands are all there (``init`` and ``doctor``
        included).
        """
        self.assertEqual(set(_REPORTING) - set(self.commands()), set())

    def test_top_level(self):
        """
        ``flocker-zfs --help`` lists the commands and the exit statuses.
        """
        status, out, _ = self.cli("--help", common=False)
        self.assertEqual(status, 0)
        for name in self.commands():
            self.assertIn(name, out)
        self.assertIn("exit status", out)

    def test_python_m(self):
        """
        ``python -m flocker_zfs --help`` works, and a user error from it
        exits 1 with one line (and no traceback).
        """
        env = dict(os.environ, PYTHONPATH=_REPOSITORY)
        result = subprocess.run([sys.executable, "-m", "flocker_zfs", "--help"],
                                capture_output=True, env=env, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"usage: flocker-zfs", result.stdout)
        result = subprocess.run(
            [sys.executable, "-m", "flocker_zfs", "resize", "--pool", "bad pool",
             "--config", os.path.join(self.base, "agent.yml"), DATASET, "1G"],
            capture_output=True, env=env, timeout=60)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertOneLineError(result.stderr.decode("utf-8"), "agent.yml")


class ConfigTests(_CLICase):
    """
    ``--config``: the config's dataset settings are the defaults.
    """

    def config(self, pool="other", mount_root=None, name="agent.yml"):
        return _write(os.path.join(self.base, name), (
            "version: 1\ncontrol-service: {hostname: control.example}\n"
            "dataset:\n  backend: zfs\n  pool: %s\n  mount_root: %s\n  node_file: %s\n"
            % (pool, mount_root or os.path.join(self.base, "cfg-mnt"), self.node_file)))

    def test_config_defaults(self):
        """
        The pool, mount root and node file come from ``--config``.
        """
        self.fake.add_pool("other")
        path = self.config()
        status, out, err = self.cli("create", DATASET, "--config", path, common=False)
        self.assertEqual((status, err), (0, ""))
        self.assertIn(os.path.join(self.base, "cfg-mnt", DATASET), out)
        status, out, _ = self.cli("status", "--json", "--config", path, common=False)
        document = json.loads(out)
        self.assertEqual((document["pool"], len(document["datasets"])), ("other", 1))
        self.assertTrue(os.path.exists(self.node_file))

    def test_lock_dir(self):
        """
        Commands take the per-dataset lock files in the config's
        ``lock_dir``, the ones ``peer-serve`` and the agent take.
        """
        self.fake.add_pool("other")
        locks = os.path.join(self.base, "locks")
        path = self.config()
        with open(path, "a") as handle:
            handle.write("  lock_dir: %s\n" % (locks,))
        status, out, err = self.cli("create", DATASET, "--config", path, common=False)
        self.assertEqual((status, err), (0, ""))
        self.assertTrue(os.path.isfile(os.path.join(locks, "other", DATASET + ".lock")))

    def test_flags_override(self):
        """
        Explicit options override the config's settings.
        """
        self.fake.add_pool("other")
        path = self.config()
        self.cli("create", DATASET, "--config", path, common=False)
        status, out, _ = self.cli("status", "--json", "--config", path, "--pool", "flocker",
                                  common=False)
        self.assertEqual((status, json.loads(out)["pool"], json.loads(out)["datasets"]),
                         (0, "flocker", []))

    def test_default_config(self):
        """
        Without ``--config`` the default file is used when it exists, and
        the built-in defaults (pool ``flocker``) when it does not.
        """
        self.common = self.common[2:]   # no --pool
        status, out, err = self.cli("status", "--json")
        self.assertEqual((status, json.loads(out)["pool"]), (0, "flocker"))
        self.default_config = self.config(pool="nopool")
        status, _, err = self.cli("status")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "zpool create nopool")

    def test_config_logged(self):
        """
        Loading the config is logged in the ``--log-file``, with its path.
        """
        self.fake.add_pool("other")
        path, log = self.config(), os.path.join(self.base, "log.json")
        status, _, _ = self.cli("status", "--config", path, "--log-file", log, common=False)
        self.assertEqual(status, 0)
        [start] = [m for m in _lines(log) if m.get("action_type") == CONFIG_LOAD
                   and m["action_status"] == "started"]
        self.assertEqual(start["path"], path)

    def test_bad_config(self):
        """
        A malformed or invalid config exits 1 with one line naming the file
        and the fix, before any zfs command runs.
        """
        bad = [_write(os.path.join(self.base, "bad1.yml"), "dataset: [unclosed\n"),
               _write(os.path.join(self.base, "bad2.yml"),
                      "dataset:\n  backend: zfs\n  ssh_port: many\n"),
               os.path.join(self.base, "missing.yml")]
        for path in bad:
            status, out, err = self.cli("status", "--config", path)
            self.assertEqual((path, status, out), (path, 1, ""))
            self.assertOneLineError(err, path)
        self.assertEqual(self.fake.commands, [])

    def test_other_backend(self):
        """
        A config for another backend is refused by the dataset commands.
        """
        path = _write(os.path.join(self.base, "agent.yml"),
                      "dataset:\n  backend: flocker_zfs.test.test_cli\n")
        status, _, err = self.cli("status", "--config", path)
        self.assertEqual(status, 1)
        self.assertEqual(err.count("\n"), 1)
        self.assertIn(path, err)


class LogFileTests(_CLICase):
    """
    ``--log-file``: eliot JSON lines.
    """

    def test_status_logged(self):
        """
        After ``status --log-file`` the new file (mode 0600) holds eliot
        JSON lines with the backend's actions, which eliot-tree can render.
        """
        log = os.path.join(self.base, "log.json")
        status, _, _ = self.cli("status", "--log-file", log)
        self.assertEqual(status, 0)
        self.assertEqual(stat.S_IMODE(os.stat(log).st_mode), 0o600)
        messages = _lines(log)
        types = {message.get("action_type") for message in messages}
        self.assertTrue({START, DISCOVER} <= types, types)
        try:
            from eliottree import render_tasks, tasks_from_iterable
        except ImportError:
            raise self.skipTest("eliot-tree is not installed (pip install eliot-tree)")
        rendered = io.StringIO()
        with open(log) as handle:
            render_tasks(rendered.write, tasks_from_iterable(json.loads(line) for line in handle))
        self.assertIn(DISCOVER, rendered.getvalue())

    def test_appends_and_detaches(self):
        """
        A second command appends to the file; nothing logged after a
        command ends goes there.
        """
        log = os.path.join(self.base, "log.json")
        self.cli("status", "--log-file", log)
        first = len(_lines(log))
        self.cli("create", DATASET, "--log-file", log)
        Message.log(message_type="flocker_zfs:test:after")
        messages = _lines(log)
        self.assertGreater(len(messages), first)
        self.assertNotIn("flocker_zfs:test:after",
                         [message.get("message_type") for message in messages])

    def test_unwritable(self):
        """
        A log file that cannot be opened exits 1 with one line.
        """
        status, _, err = self.cli("status", "--log-file", os.path.join(self.base, "no", "x"))
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "cannot open log file")


class PeerCommandTests(SynchronousTestCase):
    """
    Tests for ``push``, ``handoff`` and ``recover`` over a fake network.
    """

    def setUp(self):
        root = os.path.abspath(self.mktemp())
        self.network = FakeNetwork(root)
        self.addCleanup(self.network.unmount_all)
        self.a = self.network.add_node("a.example")
        self.b = self.network.add_node("b.example")
        self.identity = _write(root + "/etc/id", "x\n", 0o600)
        self.known = _write(root + "/etc/known_hosts", "x\n", 0o600)
        self.common = ["--pool", "flocker", "--mount-root", root + "/cli-a",
                       "--node-file", _node_file(root + "/etc/node.json", self.a.node_uuid)]
        self.ssh = ["--ssh-identity", self.identity, "--ssh-known-hosts", self.known]
        self.default_config = root + "/no-agent.yml"
        self.peers = []

    def make_peer(self, reactor, config, host, port):
        self.peers.append((host, port, config.port))
        return self.a.peer(host)

    def cli(self, *argv, err=None):
        out, err = io.StringIO(), err or io.StringIO()
        ssh = self.ssh if argv[0] in ("push", "handoff", "recover") else []
        argv = list(argv[:1]) + self.common + ssh + list(argv[1:])
        status = self.successResultOf(run(self.network.clock, argv, out, err, self.a.fake,
                                          self.make_peer, default_config=self.default_config,
                                          environ={}))
        return status, out.getvalue(), err.getvalue()

    def test_push_then_handoff(self):
        """
        ``push`` sends the dataset to the peer; ``handoff`` makes the peer the
        writable owner, and ``--json`` reports the generation.
        """
        self.assertEqual(self.cli("create", DATASET)[0], 0)
        status, out, err = self.cli("push", DATASET, "b.example")
        self.assertEqual((status, err), (0, ""))
        self.assertIn("full stream", out)
        status, out, _ = self.cli("handoff", DATASET, "b.example:2222", "--json")
        self.assertEqual((status, json.loads(out)["generation"]), (0, 2))
        self.assertEqual(self.peers[-1][:2], ("b.example", 2222))
        replica = self.successResultOf(self.b.backend.get(DATASET))
        self.assertTrue(replica.writable)
        self.assertIn("nothing to do", self.cli("recover", DATASET, "b.example")[1])
        status, out, _ = self.cli("recover", DATASET, "b.example", "--json")
        self.assertEqual(json.loads(out), {"dataset_id": DATASET, "outcome": "none"})
        _, table, _ = self.cli("status")
        row = [line for line in table.splitlines() if line.startswith(DATASET)][0]
        self.assertIn("replica", _cells(row))

    def test_status_replicas(self):
        """
        After a push ``status`` lists the peer as holding a replica: its
        uuid shortened to 8 characters in the table, in full in JSON;
        ``push --json`` gives the snapshot GUID as a string.
        """
        self.cli("create", DATASET)
        status, out, _ = self.cli("push", DATASET, "b.example", "--json")
        pushed = json.loads(out)
        self.assertEqual((status, pushed["dataset_id"], pushed["base"]), (0, DATASET, None))
        self.assertIsInstance(pushed["guid"], str)
        _, table, _ = self.cli("status")
        row = [line for line in table.splitlines() if line.startswith(DATASET)][0]
        self.assertIn(self.b.node_uuid[:8], _cells(row))
        self.assertNotIn(self.b.node_uuid, row)
        [entry] = json.loads(self.cli("status", "--json")[1])["datasets"]
        self.assertEqual(entry["replicas"], [self.b.node_uuid])

    def test_progress_on_terminal(self):
        """
        On a terminal ``push`` draws a progress line on stderr and ends it.
        """
        self.cli("create", DATASET)
        tty = _TTY()
        status, _, err = self.cli("push", DATASET, "b.example", err=tty)
        self.assertEqual(status, 0)
        self.assertTrue(err.startswith("\rpush %s: " % (DATASET,)), err)
        self.assertTrue(err.endswith("\n"))

    def test_hostile_peer(self):
        """
        A peer that could be read as an ssh option or a shell command is
        refused with one line before anything runs.
        """
        self.cli("create", DATASET)
        before = len(self.a.fake.commands)
        for bad in ["-oProxyCommand=touch /tmp/pwned", "a;id", "$(id)", "host name",
                    "[::1]:99999", "h:0"]:
            status, _, err = self.cli("push", "--", DATASET, bad)
            self.assertEqual((bad, status, err.count("\n")), (bad, 1, 1))
        self.assertEqual((len(self.a.fake.commands), self.peers), (before, []))

    def test_identity_permissions(self):
        """
        An identity file readable by others is refused with the chmod fix.
        """
        self.cli("create", DATASET)
        os.chmod(self.identity, 0o644)
        status, _, err = self.cli("push", DATASET, "b.example")
        self.assertEqual(status, 1)
        self.assertIn("chmod 600", err)

    def test_missing_known_hosts(self):
        """
        A missing known_hosts file is refused, saying how to record keys.
        """
        self.cli("create", DATASET)
        os.remove(self.known)
        status, _, err = self.cli("push", DATASET, "b.example")
        self.assertEqual(status, 1)
        self.assertIn("ssh-keyscan", err)

    def test_ssh_settings_from_config(self):
        """
        The ssh identity, known_hosts and port come from ``--config``.
        """
        self.cli("create", DATASET)
        config = _write(self.identity + ".yml", (
            "dataset:\n  backend: zfs\n  ssh_identity: %s\n  ssh_known_hosts: %s\n"
            "  ssh_port: 2200\n" % (self.identity, self.known)))
        self.ssh = ["--config", config]
        status, _, err = self.cli("push", DATASET, "b.example")
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(self.peers, [("b.example", 2200, 2200)])

    def test_unreachable(self):
        """
        An unreachable peer exits 1 with one line naming it.
        """
        self.cli("create", DATASET)
        self.network.partition("b.example")
        status, _, err = self.cli("push", DATASET, "b.example")
        self.assertEqual(status, 1)
        self.assertIn("peer unreachable: b.example", err)


class _SwitchablePeer(object):
    """
    A peer whose ``datasets`` query fails as ssh does for a host key not in
    known_hosts, until ``answering`` is set.
    """

    def __init__(self, node_uuid):
        self.node_uuid = node_uuid
        self.answering = False
        self.calls = 0

    def call(self, verb, *args):
        self.calls += 1
        if not self.answering:
            return fail(UnknownHostKey("10.0.0.2", b"No ED25519 host key is known for "
                                                   b"[10.0.0.2]:2222 and you have requested "
                                                   b"strict checking.\nHost key verification "
                                                   b"failed.\n"))
        return succeed({"node_state": node_state_to_json(NodeState(node_uuid=self.node_uuid))})


class AgentConsoleTests(SynchronousTestCase):
    """
    Tests for :class:`AgentConsole` on the eliot messages an agent logs.
    """

    def setUp(self):
        self.err = io.StringIO()
        console = AgentConsole(self.err)
        add_destinations(console)
        self.addCleanup(remove_destination, console)

    def fail_iteration(self, exception):
        try:
            with start_action(action_type=AGENT_ITERATION, node_uuid=NODE):
                raise exception
        except Exception:
            pass

    def test_cancellation_quiet(self):
        """
        A cancelled iteration (the agent stopping) prints nothing, also when
        the cancellation comes wrapped in a DeferredList's FirstError.
        """
        self.fail_iteration(CancelledError())
        self.fail_iteration(FirstError(Failure(CancelledError()), 0))
        self.assertEqual(self.err.getvalue(), "")

    def test_failure_said(self):
        """
        Any other failed iteration is one line each time.
        """
        self.fail_iteration(RuntimeError("boom\nagain"))
        self.fail_iteration(RuntimeError("boom\nagain"))
        self.assertEqual(self.err.getvalue(),
                         "flocker-zfs agent: iteration failed: boom again\n" * 2)

    def test_unreachable_reason_changes(self):
        """
        A peer that stays unreachable for another reason is said again.
        """
        for reason in ("timed out", "timed out", "refused", "refused"):
            with start_action(action_type=AGENT_CLUSTER_STATE, node_uuid=OTHER,
                              address="node-b") as action:
                action.add_success_fields(reachable=False, reason=reason, error="X")
        self.assertEqual(self.err.getvalue().splitlines(), [
            "flocker-zfs agent: peer node-b (node %s) is unreachable: timed out" % (OTHER,),
            "flocker-zfs agent: peer node-b (node %s) is unreachable: refused" % (OTHER,)])

    def iteration(self, conflicts):
        with start_action(action_type=AGENT_ITERATION, node_uuid=NODE) as action:
            for dataset_id, reason in sorted(conflicts.items()):
                Message.log(message_type="flocker_zfs:agent:conflict", dataset_id=dataset_id,
                            reason=reason, fix="destroy the copy on node-a")
            action.add_success_fields(started=[], skipped={}, unreachable={},
                                      conflicts=conflicts)

    def test_conflict_said_once_then_settled(self):
        """
        A dataset in conflict is said once with the fix (again only if the
        description changes), and once more when a round finds it settled.
        """
        self.iteration({DATASET: "writable on a and b"})
        self.iteration({DATASET: "writable on a and b"})
        self.iteration({DATASET: "writable on a, b and c"})
        self.iteration({})
        self.iteration({})
        self.assertEqual(self.err.getvalue().splitlines(), [
            "flocker-zfs agent: dataset %s is in conflict: writable on a and b "
            "Fix: destroy the copy on node-a" % (DATASET,),
            "flocker-zfs agent: dataset %s is in conflict: writable on a, b and c "
            "Fix: destroy the copy on node-a" % (DATASET,),
            "flocker-zfs agent: dataset %s: no conflict found in the last round (at most one "
            "writable copy among the nodes that answered)" % (DATASET,)])

    def test_unlisted_round_settles_nothing(self):
        """
        A round that found this node missing from the deployment file
        checked no conflicts, so it does not say one is settled.
        """
        self.iteration({DATASET: "writable on a and b"})
        with start_action(action_type=AGENT_ITERATION, node_uuid=NODE) as action:
            Message.log(message_type="flocker_zfs:agent:not_in_deployment", node_uuid=NODE,
                        path="/d.yml")
            action.add_success_fields(conflicts={})
        self.assertNotIn("no conflict", self.err.getvalue())


class _TTY(io.StringIO):
    def isatty(self):
        return True


class AgentCommandTests(_CLICase):
    """
    ``flocker-zfs agent`` with the fake ZFS.
    """

    def setUp(self):
        _CLICase.setUp(self)
        _node_file(self.node_file)
        self.deployment = _write(os.path.join(self.base, "deployment.yml"), (
            "nodes:\n  - uuid: %s\n    address: 127.0.0.1\n"
            "datasets:\n  - id: %s\n    primary: %s\n    maximum_size: 64M\n"
            % (NODE, DATASET, NODE)))
        self.config = _write(os.path.join(self.base, "agent.yml"), (
            "version: 1\ndataset:\n  backend: zfs\n  pool: flocker\n  mount_root: %s\n"
            "  node_file: %s\n  deployment: %s\n  poll_interval: 5\n"
            % (self.mount_root, self.node_file, self.deployment)))

    def make_peer(self, reactor, config, host, port):
        raise AssertionError("a one-node deployment needs no peer")

    def shutdown(self):
        """What a reactor does on SIGTERM: run the 'before' 'shutdown' triggers."""
        triggers = self.reactor.triggers.get("before", {}).get("shutdown", [])
        return gatherResults([maybeDeferred(f, *a, **kw) for f, a, kw in triggers])

    def test_converges_and_stops(self):
        """
        ``agent`` creates the deployment's dataset on this node, keeps
        running, and exits 0 once the reactor shuts down.
        """
        out, err = io.StringIO(), io.StringIO()
        log = os.path.join(self.base, "agent.log")
        d = run(self.reactor, ["agent", "--config", self.config, "--log-file", log], out, err,
                self.fake, self.make_peer, default_config=self.default_config, environ={})
        self.assertNoResult(d)
        self.assertIn("running", out.getvalue())
        self.reactor.advance(5)
        self.assertTrue(os.path.isdir(os.path.join(self.mount_root, DATASET)))
        status, table, _ = self.cli("status")
        row = [line for line in table.splitlines() if line.startswith(DATASET)][0]
        self.assertEqual(_cells(row)[1:4],
                         ["this node", "writable", "64.0M"])
        self.assertNoResult(d)
        self.successResultOf(self.shutdown())
        self.assertEqual(self.successResultOf(d), 0)
        self.assertEqual(err.getvalue(), "")
        self.assertIn("stopped", out.getvalue())
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        types = {message.get("action_type") for message in _lines(log)}
        self.assertIn(CHANGE_CREATE, types)

    def test_failures_on_stderr(self):
        """
        A change that fails is reported on stderr, one line each time, while
        the agent keeps running.
        """
        out, err = io.StringIO(), io.StringIO()
        d = run(self.reactor, ["agent", "--config", self.config], out, err,
                _FullPool(self.fake), self.make_peer, default_config=self.default_config,
                environ={})
        self.assertEqual(len(err.getvalue().splitlines()), 1)
        for _ in range(60):     # long enough for another try, whatever the backoff
            self.reactor.advance(5)
        self.assertNoResult(d)
        lines = err.getvalue().splitlines()
        self.assertGreater(len(lines), 1)
        for line in lines:
            self.assertTrue(line.startswith("flocker-zfs agent: create failed (dataset %s): "
                                            % (DATASET,)), line)
            self.assertIn("out of space", line)
        self.successResultOf(self.shutdown())
        self.assertEqual(self.successResultOf(d), 0)
        self.assertEqual(err.getvalue().splitlines(), lines)

    def run_agent(self, make_peer=None):
        """:return: ``(Deferred of the exit status, out, err)`` of a started agent."""
        out, err = io.StringIO(), io.StringIO()
        d = run(self.reactor, ["agent", "--config", self.config], out, err, self.fake,
                make_peer or self.make_peer, default_config=self.default_config, environ={})
        self.assertNoResult(d)
        return d, out, err

    def stop(self, d):
        self.successResultOf(self.shutdown())
        self.assertEqual(self.successResultOf(d), 0)

    def test_not_in_deployment(self):
        """
        A deployment file that does not list this node is said once on
        stderr, with the fix, however many iterations pass; once it lists
        the node, that is said once too.
        """
        _write(self.deployment, "nodes:\n  - uuid: %s\n    address: 10.0.0.2\n" % (OTHER,))
        d, _, err = self.run_agent()
        for _ in range(10):
            self.reactor.advance(5)
        self.assertEqual(err.getvalue(), (
            "flocker-zfs agent: this node %s is not listed in the deployment file %s, so the "
            "agent changes nothing. Fix: add it under nodes there (on every node, with the "
            "address its peers reach it at), or check that the dataset section's node_file "
            "is this node's node.json.\n" % (NODE, self.deployment)))
        _write(self.deployment, "nodes:\n  - uuid: %s\n    address: 127.0.0.1\n" % (NODE,))
        for _ in range(10):
            self.reactor.advance(5)
        self.assertEqual(err.getvalue().splitlines()[1:], [
            "flocker-zfs agent: this node %s is listed in the deployment file %s now"
            % (NODE, self.deployment)])
        self.stop(d)
        self.assertEqual(len(err.getvalue().splitlines()), 2)

    def test_unreachable_peer(self):
        """
        A peer that cannot be reached is said once, with the reason (here
        its host key is not in known_hosts), however many iterations pass;
        once it answers, that is said once too.
        """
        _write(self.deployment, (
            "nodes:\n  - {uuid: %s, address: 127.0.0.1}\n"
            "  - {uuid: %s, address: 10.0.0.2, ssh_port: 2222}\n" % (NODE, OTHER)))
        peer = _SwitchablePeer(OTHER)
        d, _, err = self.run_agent(lambda reactor, config, host, port: peer)
        for _ in range(60):     # long enough for several tries, whatever the backoff
            self.reactor.advance(5)
        self.assertGreater(peer.calls, 2)
        self.assertEqual(err.getvalue(), (
            "flocker-zfs agent: peer 10.0.0.2 (node %s) is unreachable: the peer's SSH host "
            "key is not in known_hosts: 10.0.0.2 (No ED25519 host key is known for "
            "[10.0.0.2]:2222 and you have requested strict checking.)\n" % (OTHER,)))
        peer.answering = True
        for _ in range(60):
            self.reactor.advance(5)
        self.assertEqual(err.getvalue().splitlines()[1:], [
            "flocker-zfs agent: peer 10.0.0.2 (node %s) is reachable again" % (OTHER,)])
        self.stop(d)
        self.assertEqual(len(err.getvalue().splitlines()), 2)

    def test_needs_config(self):
        """
        Without a config file ``agent`` exits 1, saying it needs one.
        """
        status, _, err = self.cli("agent", common=False)
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "needs a configuration file", self.default_config)

    def test_missing_pool(self):
        """
        An agent whose pool is missing exits 1 at once with the fix.
        """
        self.fake = FakeZFS(profile="zfs-fuse")
        status, _, err = self.cli("agent", "--config", self.config, common=False)
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "zpool create flocker")


class ReportTests(SynchronousTestCase):
    """
    Tests for :mod:`flocker_zfs._clireport`.
    """

    def state(self):
        dataset = Dataset(
            dataset_id=DATASET, owner=OTHER, writable=False, maximum_size=None,
            used=3 * MiB, mountpoint="/flocker/" + DATASET, handoff=NODE + ":2",
            peer_bases={NODE: 7, OTHER: 8},
            snapshots=[Snapshot(name="s1", guid=1, createtxg=1)])
        return PoolState(pool="flocker", datasets={DATASET: dataset})

    def test_status_table_width(self):
        """
        The MOUNTPOINT column is shown when it fits the terminal, and left
        out when it does not.
        """
        wide = status_table(self.state(), NODE, None)
        narrow = status_table(self.state(), NODE, 120)
        self.assertIn("MOUNTPOINT", wide)
        self.assertIn("/flocker/" + DATASET, wide)
        self.assertNotIn("MOUNTPOINT", narrow)
        self.assertTrue(all(len(line) <= 120 for line in narrow.splitlines()))
        self.assertEqual(status_table(self.state(), NODE, max(map(len, wide.splitlines()))),
                         wide)

    def test_status_row(self):
        """
        Another node's owner and the replicas are shortened uuids; a copy
        handing off is "handing off"; no limit is "-".
        """
        row = status_table(self.state(), NODE).splitlines()[1]
        self.assertEqual(_cells(row),
                         [DATASET, OTHER[:8], "handing off", "-", "3.0M", "s1",
                          "%s,%s" % (NODE[:8], OTHER[:8]), "/flocker/" + DATASET])

    def test_human(self):
        """
        Sizes are binary units with one decimal.
        """
        self.assertEqual([human(v) for v in (None, 512, 1024, 64 * MiB, 3 << 39)],
                         ["-", "512B", "1.0K", "64.0M", "1.5T"])

    def test_progress(self):
        """
        The progress bar shows percentage, bytes and time left on a
        terminal, and nothing elsewhere.
        """
        clock = MemoryReactorClock()
        tty, plain = _TTY(), io.StringIO()
        bars = [Progress(clock, tty, "push x"), Progress(clock, plain, "push x")]
        clock.advance(2)
        for bar in bars:
            bar(50 * MiB, 100 * MiB)
            bar(60 * MiB, None)
            bar.done()
        self.assertEqual(plain.getvalue(), "")
        first, second = tty.getvalue().split("\r")[1:]
        self.assertEqual(first.rstrip(), "push x: [%s%s]  50%% 50.0M of ~100.0M, 25.0M/s, "
                         "~2s left" % ("#" * 15, " " * 15))
        self.assertEqual(second, "push x: 60.0M sent, 30.0M/s   \n")

    def test_width_not_terminal(self):
        """
        Output that is not a terminal has no width limit.
        """
        self.assertIsNone(_cli.report.terminal_width(io.StringIO()))
        self.assertIsNone(_cli.report.terminal_width(_TTY()))
