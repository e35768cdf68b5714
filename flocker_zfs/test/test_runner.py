"""
Tests for :mod:`flocker_zfs._runner`.
"""

import os

from eliot.testing import LoggedAction, assertHasAction, capture_logging
from twisted.internet.defer import CancelledError
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from .._actions import COMMAND
from .._runner import ProcessRunner
from ..errors import (
    CommandFailed, CommandTimedOut, DatasetNotFound, QuotaTooSmall, ZFSNotInstalled,
    ZFSNotRunning)
from ..interfaces import IRunner
from .._memreactor import MemoryProcessReactor


def _environ(tmp):
    """
    An environment whose PATH holds a fake ``zfs`` executable, so the
    runner's PATH lookup succeeds without ZFS installed.
    """
    os.makedirs(tmp)
    for name in ("zfs", "zpool"):
        path = os.path.join(tmp, name)
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o755)
    return {"PATH": tmp}


def _end(protocol, status=0, signal=None):
    if status == 0 and signal is None:
        protocol.processEnded(Failure(ProcessDone(0)))
    else:
        protocol.processEnded(Failure(ProcessTerminated(exitCode=status, signal=signal)))


class ProcessRunnerTests(SynchronousTestCase):
    """
    Tests for :class:`ProcessRunner` on a :class:`MemoryProcessReactor`.
    """

    def setUp(self):
        self.reactor = MemoryProcessReactor()
        self.tmp = self.mktemp()
        self.runner = ProcessRunner(self.reactor, timeout=60, limit=2,
                                    environ=_environ(self.tmp))

    def test_interface(self):
        """
        ``ProcessRunner`` provides ``IRunner``.
        """
        self.assertTrue(verifyObject(IRunner, self.runner))

    def test_spawns_resolved_executable(self):
        """
        The command is spawned with its executable resolved on PATH, its argv
        unchanged and ``LC_ALL=C`` so error wording is stable.
        """
        self.runner.run(["zfs", "list", "-H"])
        [(protocol, executable, argv, env, _, transport)] = self.reactor.spawned
        self.assertEqual(
            (executable, argv, env["LC_ALL"]),
            (os.path.join(self.tmp, "zfs"), ["zfs", "list", "-H"], "C"))
        self.assertTrue(transport.stdin_closed)

    def test_sbin_added_to_path(self):
        """
        ``/usr/sbin`` and ``/sbin`` are searched even when PATH lacks them.
        """
        self.runner.run(["zfs", "list"])
        env = self.reactor.spawned[0][3]
        self.assertIn("/usr/sbin", env["PATH"].split(":"))
        self.assertIn("/sbin", env["PATH"].split(":"))

    def test_stdout_on_success(self):
        """
        Exit status 0 fires the Deferred with everything written to stdout.
        """
        d = self.runner.run(["zfs", "list"])
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(1, b"a\n")
        protocol.childDataReceived(2, b"warning\n")
        protocol.childDataReceived(1, b"b\n")
        _end(protocol)
        self.assertEqual(self.successResultOf(d), b"a\nb\n")

    def test_typed_error_from_stderr(self):
        """
        A failure is the typed error matching stderr, carrying argv, status
        and stderr, and naming the dataset in its message.
        """
        d = self.runner.run(["zfs", "destroy", "p/x"])
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(2, b"cannot open 'p/x': dataset does not exist\n")
        _end(protocol, 1)
        error = self.failureResultOf(d, DatasetNotFound).value
        self.assertEqual(
            (error.argv, error.status, error.stderr, error.subject),
            (("zfs", "destroy", "p/x"), 1,
             b"cannot open 'p/x': dataset does not exist\n", "p/x"))
        self.assertIn("p/x", str(error))
        self.assertIn("Fix:", str(error))

    def test_specific_errors_first(self):
        """
        Patterns given by the caller are checked before the common ones.
        """
        import re
        d = self.runner.run(["zfs", "set", "refquota=1", "p/x"],
                            errors=((QuotaTooSmall, re.compile(rb"does not exist")),))
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(2, b"cannot open 'p/x': dataset does not exist\n")
        _end(protocol, 1)
        self.failureResultOf(d, QuotaTooSmall)

    def test_unknown_failure(self):
        """
        stderr that matches nothing gives ``CommandFailed`` with the text.
        """
        d = self.runner.run(["zfs", "frob"])
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(2, b"something odd\n")
        _end(protocol, 2)
        error = self.failureResultOf(d, CommandFailed).value
        self.assertIn("something odd", str(error))

    def test_daemon_down(self):
        """
        The zfs-fuse "daemon is not running" text gives ``ZFSNotRunning``.
        """
        d = self.runner.run(["zfs", "list"])
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(
            2, b"connect: No such file or directory\n"
               b"Please make sure that the zfs-fuse daemon is running.\n"
               b"internal error: failed to initialize ZFS library\n")
        _end(protocol, 1)
        self.assertIn("zfs-fuse", self.failureResultOf(d, ZFSNotRunning).value.fix)

    def test_not_installed(self):
        """
        An executable missing from PATH fails with ``ZFSNotInstalled`` and
        spawns nothing.
        """
        runner = ProcessRunner(self.reactor, environ={"PATH": self.mktemp()})
        d = runner.run(["no-such-zfs-binary", "list"])
        error = self.failureResultOf(d, ZFSNotInstalled).value
        self.assertIn("apt-get install", str(error))
        self.assertEqual(self.reactor.spawned, [])

    def test_timeout_kills(self):
        """
        A command still running at its timeout is killed and fails with
        ``CommandTimedOut``; its late end is ignored.
        """
        d = self.runner.run(["zfs", "list"], timeout=5)
        protocol, transport = self.reactor.spawned[0][0], self.reactor.spawned[0][5]
        self.reactor.advance(4)
        self.assertNoResult(d)
        self.reactor.advance(2)
        self.assertEqual(transport.signals, ["KILL"])
        self.failureResultOf(d, CommandTimedOut)
        _end(protocol, signal=9)

    def test_cancel_kills(self):
        """
        Cancelling the Deferred kills the running command.
        """
        d = self.runner.run(["zfs", "receive", "p/x"])
        protocol, transport = self.reactor.spawned[0][0], self.reactor.spawned[0][5]
        d.cancel()
        self.assertEqual(transport.signals, ["KILL"])
        self.failureResultOf(d, CancelledError)
        _end(protocol, signal=9)

    def test_limit(self):
        """
        At most ``limit`` commands run at once; the next starts when one ends.
        """
        ds = [self.runner.run(["zfs", "list", str(i)]) for i in range(3)]
        self.assertEqual(len(self.reactor.spawned), 2)
        _end(self.reactor.spawned[0][0])
        self.assertEqual(len(self.reactor.spawned), 3)
        self.assertEqual(self.reactor.spawned[2][2], ["zfs", "list", "2"])
        self.successResultOf(ds[0])

    def test_cancel_queued(self):
        """
        Cancelling a command still waiting for a slot never spawns it.
        """
        [self.runner.run(["zfs", "list", str(i)]) for i in range(2)]
        queued = self.runner.run(["zfs", "list", "queued"])
        queued.cancel()
        self.failureResultOf(queued, CancelledError)
        _end(self.reactor.spawned[0][0])
        self.assertEqual([s[2][-1] for s in self.reactor.spawned], ["0", "1"])

    @capture_logging(None)
    def test_logged_failure(self, logger):
        """
        A failed command is a failed eliot action with argv, status and stderr.
        """
        d = self.runner.run(["zfs", "destroy", "p/x"])
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(2, b"cannot open 'p/x': dataset does not exist\n")
        _end(protocol, 1)
        self.failureResultOf(d)
        assertHasAction(self, logger, COMMAND, False,
                        {"argv": ["zfs", "destroy", "p/x"]},
                        {"status": 1,
                         "stderr": "cannot open 'p/x': dataset does not exist\n"})

    @capture_logging(None)
    def test_logged_success(self, logger):
        """
        A successful command is a successful eliot action with its status.
        """
        d = self.runner.run(["zfs", "list"])
        _end(self.reactor.spawned[0][0])
        self.successResultOf(d)
        [action] = LoggedAction.of_type(logger.messages, COMMAND)
        self.assertEqual((action.succeeded, action.end_message["status"]), (True, 0))
