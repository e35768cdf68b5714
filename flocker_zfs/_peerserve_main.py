# test-case-name: flocker_zfs.test.test_peerserver
"""
``flocker-zfs peer-serve``: the process sshd runs for each peer request.

The node's ``authorized_keys`` entry forces it::

    restrict,command="flocker-zfs peer-serve --pool flocker --mount-root /flocker \\
        --node-file /etc/flocker/node.json" ssh-ed25519 AAAA... flocker-peer

so whatever the client asks for arrives in ``SSH_ORIGINAL_COMMAND`` and is
parsed by :func:`~flocker_zfs._protocol.parse_request` (never by a shell).
The pool, mount root and node identity come from the forced command's own
options, never from the client.

The response is one JSON line on stdout; the exit status is 0 or 1, and a
failure also prints one line on stderr.  For ``receive``, ``zfs receive`` is
spawned with this process's stdin (the ssh channel) as its own stdin, so the
stream flows from sshd to zfs without passing through Python; other verbs
never read stdin.  Mutating requests take the dataset's exclusive
``flock`` in ``--lock-dir`` without waiting (:mod:`flocker_zfs._dslock`),
so no two ``peer-serve`` processes, nor a ``peer-serve`` and the node's
agent or a command using the same lock directory, work on one dataset at
once: the later one is refused as :class:`~flocker_zfs._dslock.DatasetLocked`
(peer-serve) or waits a bounded time (the backend).
"""

import json
import os

from eliot import to_file, start_action
from eliot.twisted import DeferredContext
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import react
from zope.interface import implementer

from ._actions import COMMAND
from ._backend import ZFSBackend
from ._peerserver import PeerServer
from ._protocol import ABORT_RECEIVE, ACQUIRE, RECEIVE, ProtocolError, encode_error, parse_request
from ._runner import ProcessRunner, _Collector, _kill
from ._dslock import DEFAULT_LOCK_DIR, DatasetLock, validate_lock_dir
from .errors import CommandFailed, ConfigError, FlockerZFSError, ZFSNotInstalled
from .interfaces import IReceiveStream
from .names import validate_pool_name
from .node import load_node_uuid

#: Requests that change a dataset, and so take its process lock.
_MUTATING = (RECEIVE, ACQUIRE, ABORT_RECEIVE)


@implementer(IReceiveStream)
class ProcessReceiveStream(object):
    """
    The ssh session's stdin as the stream of a ``receive``: ``zfs
    receive`` is spawned with ``stdin_fd`` as its stdin (``childFDs``
    ``{0: stdin_fd, 1: "r", 2: "r"}``), so no byte passes through Python.

    :param reactor: ``IReactorProcess`` + ``IReactorTime``.
    :param int stdin_fd: the descriptor carrying the stream.
    :param runner: the :class:`~flocker_zfs.ProcessRunner` whose environment
        (``LC_ALL=C``, ``PATH`` with the sbin directories), executable lookup
        and error mapping the spawned ``zfs receive`` shares.
    """

    def __init__(self, reactor, stdin_fd, runner):
        self._reactor = reactor
        self._fd = stdin_fd
        self._runner = runner
        self._used = False

    def receive(self, argv, errors=()):
        argv = [str(arg) for arg in argv]
        # No timeout: a large stream takes as long as it takes; a dead
        # connection ends stdin, and zfs receive then fails.
        with start_action(action_type=COMMAND, argv=argv).context() as action:
            executable = self._runner._resolve(argv[0])
            if self._used:
                d = fail(CommandFailed(argv=argv, status=1,
                                       stderr=b"the stream was already consumed\n"))
            elif executable is None:
                d = fail(ZFSNotInstalled(argv=argv, status=127,
                                         stderr=b"zfs: command not found\n"))
            else:
                self._used = True
                d = self._spawn(executable, argv)
            ctx = DeferredContext(d)
            ctx.addCallback(self._runner._check, argv, errors, action)
            return ctx.addActionFinish()

    def _spawn(self, executable, argv):
        started = self._reactor.seconds()
        transport = []
        done = Deferred(lambda _: _kill(transport[0]) if transport else None)
        try:
            transport.append(self._reactor.spawnProcess(
                _Collector(done), executable, argv, env=self._runner._env,
                childFDs={0: self._fd, 1: "r", 2: "r"}))
        except OSError as error:
            return fail(CommandFailed(argv=argv, status=126,
                                      stderr=os.strerror(error.errno).encode("utf-8")))
        return done.addCallback(lambda result: result + (self._reactor.seconds() - started,))


def _option(options, name, default=None):
    return getattr(options, name, default) or default


def _failure_line(stdout, stderr, error):
    """Answer ``error`` (response on stdout, one line on stderr); :return: 1."""
    stdout.write(encode_error(error))
    stdout.flush()
    stderr.write("flocker-zfs peer-serve: error: %s\n" % (error,))
    return 1


def serve(reactor, options, environ, stdin_fd, stdout, stderr, runner=None):
    """
    Answer the one request in ``environ["SSH_ORIGINAL_COMMAND"]``.

    :param options: has ``pool``, ``mount_root``, ``node_file`` and
        optionally ``lock_dir`` (the forced command's options).
    :param stdout: a binary file for the response (or a text file with a
        ``buffer``).
    :param stderr: a text file for the one-line error.
    :param environ: the process environment (``SSH_ORIGINAL_COMMAND``,
        ``SSH_CONNECTION``; ``PATH`` for finding ``zfs``).
    :param int stdin_fd: the descriptor a ``receive`` stream arrives on.
    :param runner: ``IRunner`` for zfs commands (tests pass a fake);
        default a :class:`~flocker_zfs.ProcessRunner` on ``reactor``.  The
        ``receive`` stream always spawns a real process on ``reactor``.
    :return: ``Deferred`` firing with the exit status (0 or 1).
    """
    stdout = getattr(stdout, "buffer", stdout)
    text = environ.get("SSH_ORIGINAL_COMMAND")
    lock = None
    try:
        verb, args = parse_request(text)
    except ProtocolError:
        verb, args = None, []
    if verb is None:
        # Rejected: handle() answers and logs it without touching anything.
        server, stream = PeerServer(None), None
    else:
        try:
            if verb in _MUTATING:
                lock = DatasetLock(_lock_dir(options), validate_pool_name(options.pool),
                                   args[0], purpose="flocker-zfs peer-serve %s" % (verb,))
                lock.acquire()
            if runner is None:
                runner = ProcessRunner(reactor, environ=environ)
            # No lock_dir: this process already holds the dataset's flock
            # for the whole request (a second one would conflict with it).
            backend = ZFSBackend(reactor, options.pool, options.mount_root,
                                 load_node_uuid(options.node_file),
                                 runner=runner)
        except FlockerZFSError as error:
            if lock is not None:
                lock.release()
            return succeed(_failure_line(stdout, stderr, error))
        server = PeerServer(backend)
        stream = None
        if verb == RECEIVE:
            stream = ProcessReceiveStream(
                reactor, stdin_fd, runner if isinstance(runner, ProcessRunner)
                else ProcessRunner(reactor, environ=environ))
    d = server.handle(text, stream, environ.get("SSH_CONNECTION"))

    def answered(result):
        status, response = result
        if lock is not None:
            lock.release()
        stdout.write(response)
        stdout.flush()
        if status != 0:
            stderr.write("flocker-zfs peer-serve: error: %s\n" % (_message(response),))
        return status
    return d.addCallback(answered)


def _lock_dir(options):
    return validate_lock_dir(_option(options, "lock_dir", DEFAULT_LOCK_DIR))


def _message(response):
    """The one-line error of an error response."""
    try:
        fields = json.loads(response.decode("utf-8"))
        return "%s. Fix: %s" % (fields["message"].rstrip("."), fields["fix"])
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return "request failed"


def serve_main(options, environ, stdin_fd, stdout, stderr):
    """
    The ``flocker-zfs peer-serve`` process: run :func:`serve` on the global
    reactor and return the exit status.

    :param options: as for :func:`serve`, plus optionally ``log_file``: a
        path eliot's JSON log lines are appended to (one action per request).
    :return: ``int``, the exit status.
    """
    log_file = _option(options, "log_file")
    if log_file:
        try:
            to_file(open(log_file, "ab"))
        except OSError as error:
            return _failure_line(getattr(stdout, "buffer", stdout), stderr, ConfigError(
                "cannot open log file %s: %s" % (log_file, os.strerror(error.errno)),
                fix="Give peer-serve a --log-file that root can append to."))
    result = []

    def main(reactor):
        return serve(reactor, options, environ, stdin_fd, stdout, stderr).addCallback(
            result.append)
    try:
        react(main)
    except SystemExit:
        pass
    return result[0] if result else 1
