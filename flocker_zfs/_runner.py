# test-case-name: flocker_zfs.test.test_runner
"""
Runs one ``zfs``/``zpool`` command as a child process, without blocking.

:class:`ProcessRunner` is the only place that spawns single commands.  It
uses an injected reactor (``IReactorProcess`` + ``IReactorTime``), bounds the
number of concurrent children, kills a child that outlives its timeout or
whose ``Deferred`` is cancelled, and turns a failure into the typed error
that matches stderr.  Each command is an eliot action with its argv, exit
status, duration and (on failure) stderr.
"""

import os
import shutil

from eliot import start_action
from eliot.twisted import DeferredContext
from twisted.internet.defer import CancelledError, Deferred, DeferredSemaphore, fail
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from .errors import CommandTimedOut, ZFSNotInstalled, error_for
from .interfaces import IRunner
from ._actions import COMMAND

#: Where zfs lives on common systems even when PATH (cron, CI) lacks sbin.
_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class _Collector(ProcessProtocol):
    """
    Collects a child's stdout and stderr and fires ``done`` with
    ``(status, stdout, stderr)`` once the process has ended *and* its pipes
    are drained (``processEnded``, not ``processExited``).
    """

    def __init__(self, done):
        self._done = done
        self._out = []
        self._err = []

    def connectionMade(self):
        # Nothing is ever written to a command's stdin: EOF at once, so a
        # command that unexpectedly reads stdin does not hang.
        self.transport.closeStdin()

    def outReceived(self, data):
        self._out.append(data)

    def errReceived(self, data):
        self._err.append(data)

    def processEnded(self, reason):
        if self._done.called:
            # Already cancelled or timed out; the kill has now taken effect.
            return
        code = getattr(reason.value, "exitCode", None)
        signal = getattr(reason.value, "signal", None)
        status = code if code is not None else -(signal or 0)
        self._done.callback((status, b"".join(self._out), b"".join(self._err)))


def _kill(transport):
    try:
        transport.signalProcess("KILL")
    except Exception:
        # ProcessExitedAlready: it ended between the decision and the kill.
        pass


@implementer(IRunner)
class ProcessRunner(object):
    """
    Run commands as child processes of ``reactor``.

    :param reactor: provides ``IReactorProcess`` and ``IReactorTime``.
    :param float timeout: default seconds before a command is killed.
    :param int limit: most commands running at once; others wait in order.
    :param dict environ: base environment (default: ``os.environ``).
        ``LC_ALL=C`` is always added so stderr wording is stable to match.
    """

    def __init__(self, reactor, timeout=120.0, limit=8, environ=None):
        self._reactor = reactor
        self._timeout = timeout
        self._slots = DeferredSemaphore(limit)
        env = dict(os.environ if environ is None else environ)
        env["LC_ALL"] = "C"
        env["LANG"] = "C"
        path = env.get("PATH", "/usr/bin:/bin")
        for extra in _EXTRA_PATH:
            if extra not in path.split(os.pathsep):
                path += os.pathsep + extra
        env["PATH"] = path
        self._env = env

    def _resolve(self, name):
        return shutil.which(name, path=self._env["PATH"])

    def run(self, argv, errors=(), timeout=None):
        argv = [str(arg) for arg in argv]
        timeout = self._timeout if timeout is None else timeout
        # The action starts before queueing for a slot: a semaphore fires its
        # waiters in the releasing caller's eliot context (STYLE 2.5).
        with start_action(action_type=COMMAND, argv=argv).context() as action:
            executable = self._resolve(argv[0])
            if executable is None:
                d = fail(ZFSNotInstalled(
                    argv=argv, status=127,
                    stderr=("%s: command not found (searched %s)"
                            % (argv[0], self._env["PATH"])).encode("utf-8")))
            else:
                d = self._slots.run(self._spawn, executable, argv, timeout)
            ctx = DeferredContext(d)
            ctx.addCallback(self._check, argv, errors, action)
            return ctx.addActionFinish()

    def _spawn(self, executable, argv, timeout):
        started = self._reactor.seconds()
        transport = []
        done = Deferred(lambda d: _kill(transport[0]) if transport else None)
        transport.append(self._reactor.spawnProcess(
            _Collector(done), executable, argv, env=self._env))

        def timed_out(result, seconds):
            if isinstance(result, Failure) and result.check(CancelledError):
                return Failure(CommandTimedOut(
                    argv=argv, status=-9,
                    stderr=("killed after %g seconds" % (seconds,)).encode("ascii")))
            return result

        done.addTimeout(timeout, self._reactor, onTimeoutCancel=timed_out)
        done.addCallback(lambda result: result + (self._reactor.seconds() - started,))
        return done

    def _check(self, result, argv, errors, action):
        status, stdout, stderr, duration = result
        if status != 0:
            error = error_for(argv, status, stderr, errors)
            error.duration = duration
            raise error
        action.add_success_fields(status=status, duration=round(duration, 6),
                                  stdout_bytes=len(stdout))
        return stdout
