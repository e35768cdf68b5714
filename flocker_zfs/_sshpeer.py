# test-case-name: flocker_zfs.test.test_sshpeer
"""
:class:`SSHPeer`: the real :class:`~flocker_zfs.interfaces.IPeer`, one ``ssh``
process per request to the peer's ``flocker-zfs peer-serve`` forced command.

``call`` runs ssh with its stdin closed and reads the one JSON response;
``stream`` connects the local sender's stdout (``zfs send``) to ssh's stdin
through an :func:`os.pipe`, so the bytes go from process to process and never
through Python.  Progress is read from ``/proc/<pid>/io`` instead of relaying.

Exit status 255 is ssh's own failure, mapped to a typed transport error from
its stderr; any other status is the server's and comes with its JSON
response.  Both methods use an injected reactor, kill what they spawned on
cancel or timeout, and log an eliot action with a child action per process.
"""

import os
import shutil

from eliot import register_exception_extractor, start_action, write_traceback
from eliot.twisted import DeferredContext
from twisted.internet.defer import CancelledError, Deferred, gatherResults, maybeDeferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

from ._actions import PEER_CALL, PEER_PROCESS, PEER_STREAM
from ._protocol import (
    MAX_RESPONSE, ProtocolError, RemoteError, ResponseTooLarge, decode_response, request)
from ._runner import _EXTRA_PATH, _kill
from ._ssh import ssh_argv, validate_host, validate_port
from .errors import (
    TransferFailed, TransportError, TransportTimeout, ZFSNotInstalled, error_for,
    transport_error_for)
from .interfaces import IPeer

#: ssh exits with this status when it failed itself (not the remote command).
SSH_FAILED = 255

#: Exit statuses of a sender killed by SIGPIPE (by Twisted's count, and as a
#: shell reports it): the receiving side went away first.
_SIGPIPE_STATUSES = (-13, 128 + 13)

#: Longest stderr kept in a process's eliot action.
_MAX_LOGGED_STDERR = 4000

#: Bytes of a child's stderr kept in memory: the end, where ssh and the
#: server say why they failed.  What came before is dropped as it arrives,
#: so a child writing without end cannot grow this process.
MAX_KEPT_STDERR = 64 * 1024


#: The port sshd listens on unless told otherwise; a peer on it is named by
#: its host alone.
DEFAULT_SSH_PORT = 22


def peer_address(host, port):
    """
    How a peer is named in results, messages and logs: ``host`` on the
    default port, else ``host:port``, or ``[ipv6]:port`` for an address
    with colons of its own -- the forms
    :func:`~flocker_zfs._ssh.parse_peer` reads back.

    :param str host: a validated host name or IP address.
    :param int port: the ssh port.
    """
    if port == DEFAULT_SSH_PORT:
        return host
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def _status(reason):
    """
    :return: the exit status of a ``processEnded`` reason; minus the signal
        number if the process was killed by one.
    """
    code = getattr(reason.value, "exitCode", None)
    signal = getattr(reason.value, "signal", None)
    return code if code is not None else -(signal or 0)


class _Child(ProcessProtocol):
    """
    One child process (ssh, or the local sender): collects stdout and
    stderr, logs a ``PEER_PROCESS`` action, and fires :attr:`ended` with
    ``(status, stdout, stderr)`` once it has exited and its pipes are
    drained.

    Memory is bounded: stdout up to ``max_out`` bytes (past it the child is
    killed and what it sent is dropped; :attr:`overflowed` says so when it
    has ended), stderr its last :data:`MAX_KEPT_STDERR` bytes.

    :ivar pid: the process id while it runs.
    :ivar bool alive: until it exits (its ``/proc`` entry may be read).
    :ivar bool killed: we sent it SIGKILL.
    :ivar bool overflowed: its stdout passed ``max_out``.
    """

    def __init__(self, reactor, role, argv, on_output=None, max_out=None):
        self._reactor = reactor
        self._on_output = on_output
        self._max_out = max_out
        self._out = []
        self._out_size = 0
        self._err = []
        self._err_size = 0
        self.overflowed = False
        self._started = reactor.seconds()
        self.ended = Deferred()
        self.pid = None
        self.alive = False
        self.killed = False
        # Started in the caller's eliot context, so it nests under its action.
        self._action = start_action(action_type=PEER_PROCESS, role=role, argv=list(argv))

    def spawn_failed(self, failure):
        """
        End the action of a process that could not be spawned.
        """
        self._action.finish(failure.value)

    def connectionMade(self):
        self.pid = self.transport.pid
        self.alive = True
        # Nothing is written to a child's own stdin pipe: EOF at once.  (In a
        # stream, ssh's stdin is the pipe from the sender, not this one.)
        self.transport.closeStdin()

    def outReceived(self, data):
        if self.overflowed:
            return
        self._out_size += len(data)
        if self._max_out is not None and self._out_size > self._max_out:
            self.overflowed = True
            self._out = []
            self.kill()
            return
        self._out.append(data)
        if self._on_output is not None:
            self._on_output()

    def errReceived(self, data):
        self._err.append(data)
        self._err_size += len(data)
        if self._err_size > 2 * MAX_KEPT_STDERR:
            # Joined once per MAX_KEPT_STDERR bytes received: linear time.
            kept = b"".join(self._err)[-MAX_KEPT_STDERR:]
            self._err, self._err_size = [kept], len(kept)

    def processExited(self, reason):
        # Reaped: its pid may be reused from now on.
        self.alive = False

    def processEnded(self, reason):
        self.alive = False
        status = _status(reason)
        stdout, stderr = b"".join(self._out), b"".join(self._err)[-MAX_KEPT_STDERR:]
        self._out = self._err = None
        fields = {"status": status,
                  "duration": round(self._reactor.seconds() - self._started, 6)}
        if self.overflowed:
            fields["stdout_over"] = self._max_out
        if status != 0:
            fields["stderr"] = stderr[-_MAX_LOGGED_STDERR:].decode("utf-8", "replace")
        self._action.add_success_fields(**fields)
        self._action.finish()
        self.ended.callback((status, stdout, stderr))

    def kill(self):
        """
        Send SIGKILL if the process still runs.
        """
        if self.alive:
            self.killed = True
            _kill(self.transport)


def _proc_io(proc, pid, key):
    """
    :return: the ``key`` counter (``rchar``, ``wchar``) of process ``pid``
        from ``<proc>/<pid>/io``, or ``None`` if it cannot be read.
    """
    try:
        with open(os.path.join(proc, str(pid), "io"), "rb") as handle:
            for line in handle:
                name, _, value = line.partition(b":")
                if name.strip() == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return None


def _broken_pipe(status, stderr):
    """
    :return: ``True`` if a sender's failure only says that its reader went
        away (SIGPIPE, or zfs-fuse's exit 1 with "Broken pipe").
    """
    return status in _SIGPIPE_STATUSES or b"broken pipe" in stderr.lower()


@implementer(IPeer)
class SSHPeer(object):
    """
    A peer reached with ``ssh`` (see :mod:`flocker_zfs._ssh`).

    :ivar str host: the host ssh connects to.
    :ivar int port: the port it connects to.
    :ivar str address: the peer as results and messages name it
        (:func:`peer_address`: the host, with the port when it is not 22,
        so two peers on one host are told apart).

    :param reactor: provides ``IReactorProcess`` and ``IReactorTime``.
    :param SSHConfig config: identity, known_hosts, timeouts...
    :param str host: the peer's address (validated here).
    :param port: overrides ``config.port`` when not ``None``.
    :param float timeout: seconds before a ``call`` is killed.
    :param stream_timeout: seconds before a ``stream`` is killed, or ``None``
        (the default: ssh's keep-alives detect a stalled connection).
    :param float grace: seconds the other process of a stream may take to
        end by itself after one side failed, before it is killed.
    :param dict environ: base environment (default ``os.environ``); the
        agent socket is removed, ``LC_ALL=C`` set and sbin added to PATH.
    :param str proc: where ``/proc`` is (a test seam).
    :param float poll_interval: seconds between progress readings.
    :param int max_response: bytes of a reply read before ssh is killed and
        the request fails with :class:`ResponseTooLarge` (default
        :data:`~flocker_zfs._protocol.MAX_RESPONSE`).
    """

    def __init__(self, reactor, config, host, port=None, timeout=120.0,
                 stream_timeout=None, grace=5.0, environ=None, proc="/proc",
                 poll_interval=0.5, max_response=MAX_RESPONSE):
        self.host = validate_host(host)
        self.port = config.port if port is None else validate_port(port)
        self.address = peer_address(self.host, self.port)
        self._reactor = reactor
        self._config = config
        self._timeout = timeout
        self._stream_timeout = stream_timeout
        self._grace = grace
        self._proc = proc
        self._poll_interval = poll_interval
        self._max_response = max_response
        env = dict(os.environ if environ is None else environ)
        # IdentitiesOnly already ignores agent keys; with no socket at all
        # ssh cannot even ask an agent.
        env.pop("SSH_AUTH_SOCK", None)
        env["LC_ALL"] = "C"
        env["LANG"] = "C"
        path = env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        env["PATH"] = os.pathsep.join(path + [p for p in _EXTRA_PATH if p not in path])
        self._env = env

    def __repr__(self):
        return "<SSHPeer %s port %d>" % (self.host, self.port)

    def _resolve(self, name):
        return shutil.which(name, path=self._env["PATH"])

    def _ssh(self, remote_argv):
        """
        :return: ``(executable, argv)`` of the ssh command for ``remote_argv``.
        :raises TransportError: no ``ssh`` on PATH.
        """
        argv = ssh_argv(self._config, self.host, remote_argv, self.port)
        executable = self._resolve(argv[0])
        if executable is None:
            raise TransportError(self.address, (
                "ssh: command not found (searched %s); install openssh-client"
                % (self._env["PATH"],)).encode("utf-8"), argv)
        return executable, argv

    # -- call --------------------------------------------------------------

    def call(self, verb, *args):
        """
        See :meth:`flocker_zfs.interfaces.IPeer.call`.  The ssh process is
        killed when the returned ``Deferred`` is cancelled or after
        ``timeout`` seconds (failing with ``TransportTimeout``).
        """
        with start_action(action_type=PEER_CALL, peer=self.address, verb=verb,
                          args=[str(a) for a in args]).context() as action:
            d = DeferredContext(maybeDeferred(self._call, verb, args))
            d.addCallback(self._called, action)
            return d.addActionFinish()

    def _call(self, verb, args):
        executable, argv = self._ssh(request(verb, *args))
        started = self._reactor.seconds()
        # Past the limit the child kills ssh; its end then fails the call.
        child = _Child(self._reactor, "ssh", argv, max_out=self._max_response)
        done = Deferred(lambda _: child.kill())
        try:
            self._reactor.spawnProcess(child, executable, argv, env=self._env)
        except Exception:
            child.spawn_failed(Failure())
            raise

        def ended(result):
            if done.called:         # cancelled or timed out, now killed
                return
            if child.overflowed:
                done.errback(ResponseTooLarge.from_peer(self.address, self._max_response))
            else:
                done.callback(result)

        def timed_out(result, seconds):
            if isinstance(result, Failure) and result.check(CancelledError):
                return Failure(TransportTimeout(self.address, (
                    "no answer within %g seconds: ssh was killed" % (seconds,)).encode(
                        "ascii"), argv))
            return result

        child.ended.addCallback(ended)
        done.addTimeout(self._timeout, self._reactor, onTimeoutCancel=timed_out)
        done.addCallback(self._response, argv)
        done.addCallback(lambda response: (response, self._reactor.seconds() - started))
        return done

    def _response(self, result, argv):
        """
        :param result: ``(status, stdout, stderr)`` of ssh.
        :return: the response ``dict``.
        :raises TransportError: ssh itself failed.
        :raises RemoteError: the server refused.
        :raises ProtocolError: no valid response.
        """
        status, stdout, stderr = result
        if status == SSH_FAILED or status < 0:
            raise transport_error_for(self.address, stderr, argv)
        try:
            response = decode_response(self.address, stdout)
        except ProtocolError:
            if status == 0:
                raise
            raise self._no_response(status, stderr)
        if status != 0:
            raise ProtocolError("peer %s said ok but exited with status %d"
                                % (self.address, status))
        return response

    def _no_response(self, status, stderr):
        lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()
                 if line.strip()]
        return ProtocolError(
            "peer %s: the request exited with status %d without a response (%s)"
            % (self.address, status, lines[-1] if lines else "no message"))

    @staticmethod
    def _called(result, action):
        response, duration = result
        action.add_success_fields(duration=round(duration, 6))
        return response

    # -- stream ------------------------------------------------------------

    def stream(self, send_argv, verb, *args, progress=None):
        """
        See :meth:`flocker_zfs.interfaces.IPeer.stream`.

        The bytes sent are the server's ``bytes`` response field when it
        reports one; otherwise the largest ``/proc`` reading (ssh's
        ``rchar``, or the sender's ``wchar``), which may exceed the stream by
        the few KiB ssh reads for itself; ``0`` when ``/proc`` is unavailable.
        """
        send_argv = [str(arg) for arg in send_argv]
        with start_action(action_type=PEER_STREAM, peer=self.address, verb=verb,
                          args=[str(a) for a in args], send_argv=send_argv
                          ).context() as action:
            d = DeferredContext(maybeDeferred(self._stream, send_argv, verb, args, progress))
            d.addCallback(self._streamed, action)
            return d.addActionFinish()

    def _stream(self, send_argv, verb, args, progress):
        remote = request(verb, *args)
        name = send_argv[0] if send_argv else "(no command)"
        sender = self._resolve(name) if send_argv else None
        if sender is None:
            message = "%s: command not found (searched %s)" % (name, self._env["PATH"])
            raise TransferFailed("sender", ZFSNotInstalled(
                argv=send_argv, status=127, stderr=message.encode("utf-8")))
        try:
            executable, argv = self._ssh(remote)
        except TransportError as error:
            raise TransferFailed("transport", error)
        return _Stream(self, progress).start(sender, send_argv, executable, argv)

    @staticmethod
    def _streamed(result, action):
        response, sent, duration = result
        action.add_success_fields(bytes=sent, duration=round(duration, 6))
        return response, sent


class _Stream(object):
    """
    One ``sender | ssh`` pipeline: spawns both, watches progress, kills the
    survivor when one side fails, and decides which side failed.
    """

    def __init__(self, peer, progress):
        self._peer = peer
        self._reactor = peer._reactor
        self._progress = progress
        self._bytes = 0
        self._grace_call = None
        self._loop = None

    def start(self, sender_exe, send_argv, ssh_exe, ssh_argv):
        """
        :return: ``Deferred`` firing with ``(response, bytes, duration)``.
        """
        reactor, env = self._reactor, self._peer._env
        self._send_argv, self._ssh_argv = send_argv, ssh_argv
        self._started = reactor.seconds()
        self.done = Deferred(self._cancel)
        self.sender = _Child(reactor, "sender", send_argv)
        read_end, write_end = os.pipe()
        try:
            try:
                reactor.spawnProcess(self.sender, sender_exe, send_argv, env=env,
                                     childFDs={0: "w", 1: write_end, 2: "r"})  # sender -> pipe
            except Exception:
                self.sender.spawn_failed(Failure())
                raise
            self.ssh = _Child(reactor, "ssh", ssh_argv, on_output=self._read,
                              max_out=self._peer._max_response)
            try:
                reactor.spawnProcess(self.ssh, ssh_exe, ssh_argv, env=env,
                                     childFDs={0: read_end, 1: "r", 2: "r"})  # pipe -> ssh
            except Exception:
                self.ssh.spawn_failed(Failure())
                self.sender.kill()
                raise
        finally:
            # The parent keeps no end: the sender sees EPIPE when ssh goes,
            # and ssh sees EOF when the sender ends.
            os.close(read_end)
            os.close(write_end)
        self.sender.ended.addCallback(self._one_ended, self.sender, self.ssh)
        self.ssh.ended.addCallback(self._one_ended, self.ssh, self.sender)
        gatherResults([self.sender.ended, self.ssh.ended]).addCallback(self._both_ended)
        if os.path.isdir(self._peer._proc):
            self._loop = LoopingCall(self._read)
            self._loop.clock = reactor
            self._loop.start(self._peer._poll_interval, now=False)
        timeout = self._peer._stream_timeout
        if timeout is not None:
            self.done.addTimeout(timeout, reactor, onTimeoutCancel=self._timed_out)
        return self.done

    def _read(self):
        """
        Take a progress reading from ``/proc`` and report it if it grew.
        """
        readings = [0]
        for child, key in ((self.ssh, b"rchar"), (self.sender, b"wchar")):
            if child.alive:
                readings.append(_proc_io(self._peer._proc, child.pid, key) or 0)
        self._report(max(readings))

    def _report(self, count):
        if count <= self._bytes:
            return
        self._bytes = count
        if self._progress is not None:
            try:
                self._progress(count)
            except Exception:
                # A broken progress display must not break the transfer.
                write_traceback()

    def _one_ended(self, result, child, other):
        status = result[0]
        self._read()
        if not self.done.called and other.alive and self._grace_call is None and (
                status != 0 or child is self.ssh):
            # One side failed (or ssh is gone, so the sender can only fail):
            # the other normally ends by itself (EPIPE, EOF); kill it if not.
            self._grace_call = self._reactor.callLater(self._peer._grace, other.kill)
        return result

    def _stop(self):
        if self._grace_call is not None and self._grace_call.active():
            self._grace_call.cancel()
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _cancel(self, _):
        self._stop()
        self.sender.kill()
        self.ssh.kill()

    def _timed_out(self, result, seconds):
        if isinstance(result, Failure) and result.check(CancelledError):
            return Failure(TransferFailed("transport", TransportTimeout(
                self._peer.address, ("the stream did not end within %g seconds: killed"
                                     % (seconds,)).encode("ascii"), self._ssh_argv)))
        return result

    def _both_ended(self, results):
        self._stop()
        if self.done.called:    # cancelled or timed out
            return
        try:
            response = self._outcome(*results)
        except Exception:
            self.done.errback()
            return
        sent = response.get("bytes")
        if type(sent) is not int or sent < 0:
            sent = self._bytes
        self._report(sent)
        self.done.callback((response, sent, self._reactor.seconds() - self._started))

    def _outcome(self, sender, ssh):
        """
        Decide what happened, from both processes' ``(status, stdout, stderr)``.

        ssh's own failure (255, or a signal we did not send) is the transport
        side.  Then a sender that failed by itself: what the receiver says of
        the cut stream is a consequence.  Then the receiver's error (its
        failure makes the sender die of a broken pipe, a consequence too).

        :return: the response ``dict`` if everything succeeded.
        :raises TransferFailed: otherwise.
        """
        peer = self._peer.address
        send_status, _, send_err = sender
        ssh_status, ssh_out, ssh_err = ssh
        sender_error = None
        if send_status != 0:
            sender_error = error_for(self._send_argv, send_status, send_err)
        sender_is_cause = sender_error is not None and not self.sender.killed and not (
            _broken_pipe(send_status, send_err))

        transport_error = receiver_error = response = None
        if self.ssh.overflowed:
            # Killed by us for the size of its reply: the receiving side's fault.
            receiver_error = ResponseTooLarge.from_peer(peer, self._peer._max_response)
        elif ssh_status == SSH_FAILED or (ssh_status < 0 and not self.ssh.killed):
            transport_error = transport_error_for(peer, ssh_err, self._ssh_argv)
        elif self.ssh.killed:
            transport_error = TransportError(peer, ssh_err + (
                b"\nssh was killed %g seconds after the sender ended" % (self._peer._grace,)),
                self._ssh_argv)
        else:
            try:
                response = decode_response(peer, ssh_out)
            except RemoteError as error:
                receiver_error = error
            except ProtocolError as error:
                receiver_error = error if ssh_status == 0 else self._peer._no_response(
                    ssh_status, ssh_err)
            else:
                if ssh_status != 0:
                    receiver_error = ProtocolError("peer %s said ok but exited with status %d"
                                                   % (peer, ssh_status))

        errors = [("sender", sender_error), ("transport", transport_error),
                  ("receiver", receiver_error)]
        if transport_error is not None and not self.ssh.killed:
            first = "transport"
        elif sender_is_cause:
            first = "sender"
        elif receiver_error is not None:
            first = "receiver"
        elif transport_error is not None:
            first = "transport"
        elif sender_error is not None:
            first = "sender"
        else:
            return response
        primary = dict(errors)[first]
        others = [error for side, error in errors if side != first and error is not None]
        raise TransferFailed(first, primary, others)


def _transport_fields(error):
    return {"peer": error.peer, "stderr": error.stderr.decode("utf-8", "replace")}


def _remote_fields(error):
    return {"peer": error.peer, "remote_error": error.name}


def _transfer_fields(error):
    return {"side": error.side, "error": type(error.error).__name__,
            "others": [type(other).__name__ for other in error.others]}


register_exception_extractor(TransportError, _transport_fields)
register_exception_extractor(RemoteError, _remote_fields)
register_exception_extractor(TransferFailed, _transfer_fields)
