"""
Tests for :mod:`flocker_zfs._sshpeer` on a :class:`MemoryProcessReactor`:
the ssh and sender processes are driven by hand.
"""

import os
import resource

from eliot.testing import LoggedAction, assertHasAction, capture_logging
from twisted.internet.defer import CancelledError
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from .._actions import PEER_CALL, PEER_PROCESS, PEER_STREAM
from .._memreactor import MemoryProcessReactor
from .._protocol import (
    MAX_RESPONSE, ProtocolError, RemoteError, ResponseTooLarge, encode_error, encode_ok,
    request)
from .._ssh import SSHConfig, ssh_argv
from .._sshpeer import MAX_KEPT_STDERR, SSHPeer
from ..errors import (
    DatasetNotFound, DestinationModified, HostKeyMismatch, InvalidName, PeerPermissionDenied,
    PeerUnreachable, StreamIncomplete, TransferFailed, TransportError, TransportTimeout,
    ZFSNotInstalled)
from ..interfaces import IPeer
from .realssh import make_sshd

CONFIG = SSHConfig(identity="/etc/flocker/id_rsa_flocker",
                   known_hosts="/etc/flocker/known_hosts")
HOST = "node-2.example"
DATASET = "6f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f"
OWNER = "0a1b2c3d-4e5f-4b7c-9e8f-6f1c2b5e3d4a"
RECEIVE = ("receive", DATASET, "full", "flocker-1", "123", OWNER, 1)
SEND = ["zfs", "send", "pool/%s@flocker-1" % (DATASET,)]

HOST_KEY_CHANGED = (
    b"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
    b"@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
    b"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
    b"Host key for node-2.example has changed and you have requested strict checking.\r\n"
    b"Host key verification failed.\r\n")


def _environ(tmp):
    """
    An environment whose PATH holds stand-ins for ``ssh`` and ``zfs``, so
    the PATH lookups succeed; nothing is ever run here.
    """
    os.makedirs(tmp)
    for name in ("ssh", "zfs"):
        path = os.path.join(tmp, name)
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o755)
    return {"PATH": tmp, "SSH_AUTH_SOCK": "/tmp/agent.sock", "HOME": "/root"}


def _end(protocol, status=0, signal=None):
    if status == 0 and signal is None:
        protocol.processEnded(Failure(ProcessDone(0)))
    else:
        protocol.processEnded(Failure(ProcessTerminated(
            exitCode=status if signal is None else None, signal=signal)))


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


class _PeerCase(SynchronousTestCase):
    """
    A peer on a memory reactor, with a fake ``/proc`` directory.
    """

    def setUp(self):
        self.reactor = MemoryProcessReactor()
        self.bin = os.path.abspath(self.mktemp())
        self.proc = os.path.abspath(self.mktemp())
        os.makedirs(self.proc)
        self.peer = SSHPeer(self.reactor, CONFIG, HOST, timeout=60, grace=5,
                            environ=_environ(self.bin), proc=self.proc)

    def set_io(self, transport, rchar=0, wchar=0):
        """
        Write the fake ``/proc/<pid>/io`` of a spawned process.
        """
        directory = os.path.join(self.proc, str(transport.pid))
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "io"), "w") as handle:
            handle.write("rchar: %d\nwchar: %d\nsyscr: 1\nsyscw: 1\n" % (rchar, wchar))


class SSHPeerCallTests(_PeerCase):
    """
    Tests for :meth:`SSHPeer.call`.
    """

    def test_interface(self):
        """
        ``SSHPeer`` provides ``IPeer``; its address is the host.
        """
        self.assertTrue(verifyObject(IPeer, self.peer))
        self.assertEqual(self.peer.address, HOST)

    def test_address_names_port(self):
        """
        A peer on a port other than 22 is named ``host:port`` (``[ipv6]:port``)
        in its address and so in its errors, while ssh still gets the bare
        host and ``-p``; on port 22 the address is the host alone.
        """
        cases = [(HOST, None, CONFIG, HOST),
                 (HOST, 2222, CONFIG, HOST + ":2222"),
                 (HOST, None, CONFIG.set(port=2200), HOST + ":2200"),
                 (HOST, 22, CONFIG.set(port=2200), HOST),
                 ("fd00::2", 2222, CONFIG, "[fd00::2]:2222"),
                 ("::1", None, CONFIG, "::1"),
                 ("10.0.0.7", 2200, CONFIG, "10.0.0.7:2200")]
        for host, port, config, address in cases:
            peer = SSHPeer(self.reactor, config, host, port=port, environ={"PATH": self.bin})
            self.assertEqual((peer.address, peer.host), (address, host))
            d = peer.call("hello")
            protocol, _, argv = self.reactor.spawned[-1][:3]
            self.assertEqual(argv, ssh_argv(config, host, request("hello"), peer.port))
            protocol.childDataReceived(2, b"Connection refused\r\n")
            _end(protocol, 255)
            self.assertEqual(self.failureResultOf(d, PeerUnreachable).value.peer, address)

    def test_hostile_host(self):
        """
        A hostile host is refused when the peer is made.
        """
        self.assertRaises(InvalidName, SSHPeer, self.reactor, CONFIG,
                          "-oProxyCommand=touch /tmp/pwned")

    def test_spawns_ssh(self):
        """
        One ssh runs the joined request, resolved on PATH, with its stdin
        closed, ``LC_ALL=C`` and no agent socket.
        """
        self.peer.call("state", DATASET)
        [(protocol, executable, argv, env, child_fds, transport)] = self.reactor.spawned
        self.assertEqual(
            (executable, argv, child_fds),
            (os.path.join(self.bin, "ssh"),
             ssh_argv(CONFIG, HOST, request("state", DATASET)), None))
        self.assertTrue(transport.stdin_closed)
        self.assertEqual(env["LC_ALL"], "C")
        self.assertNotIn("SSH_AUTH_SOCK", env)
        self.assertIn("/usr/sbin", env["PATH"].split(":"))

    def test_port_override(self):
        """
        A port given to the peer overrides the config's.
        """
        SSHPeer(self.reactor, CONFIG, HOST, port=2222, environ={"PATH": self.bin}
                ).call("hello")
        argv = self.reactor.spawned[0][2]
        self.assertEqual(argv[argv.index("-p") + 1], "2222")

    def test_success(self):
        """
        Exit status 0 with an ok response fires with the response.
        """
        d = self.peer.call("hello")
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(1, b'{"ok": true, ')
        protocol.childDataReceived(1, b'"pool": "flocker"}\n')
        _end(protocol)
        self.assertEqual(self.successResultOf(d), {"ok": True, "pool": "flocker"})

    def test_remote_error(self):
        """
        The server's error response fails with ``RemoteError`` naming it.
        """
        d = self.peer.call("state", DATASET)
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(1, encode_error(DestinationModified(subject="p/x")))
        _end(protocol, 1)
        error = self.failureResultOf(d, RemoteError).value
        self.assertEqual((error.name, error.peer), ("DestinationModified", HOST))

    def test_transport_errors(self):
        """
        Exit status 255 is ssh's own failure, typed from its stderr, even if
        stdout looks like a response.
        """
        cases = [
            (HOST_KEY_CHANGED, HostKeyMismatch),
            (b"root@node-2: Permission denied (publickey).\r\n", PeerPermissionDenied),
            (b"ssh: connect to host node-2 port 22: Connection refused\r\n", PeerUnreachable),
            (b"Timeout, server node-2 not responding.\r\n", TransportTimeout),
            (b"something new\r\n", TransportError),
        ]
        for stderr, error_type in cases:
            d = self.peer.call("hello")
            protocol = self.reactor.spawned[-1][0]
            protocol.childDataReceived(1, encode_ok())
            protocol.childDataReceived(2, stderr)
            _end(protocol, 255)
            error = self.failureResultOf(d, TransportError).value
            self.assertIs(type(error), error_type)
            self.assertEqual((error.peer, error.stderr), (HOST, stderr))

    def test_reply_too_large(self):
        """
        A peer that sends more than ``MAX_RESPONSE`` bytes (a forced command
        such as ``head -c 3000000000 /dev/zero``) has ssh killed the moment
        it passes the limit, and what arrives after is ignored; once ssh has
        ended the call fails with ``ResponseTooLarge`` naming the peer and
        the limit.
        """
        d = self.peer.call("datasets")
        protocol, transport = self.reactor.spawned[0][0], self.reactor.spawned[0][5]
        chunk = b"\0" * (1024 * 1024)
        for _ in range(MAX_RESPONSE // len(chunk)):
            protocol.childDataReceived(1, chunk)
        self.assertEqual(transport.signals, [])
        self.assertNoResult(d)
        protocol.childDataReceived(1, b"\0")
        self.assertEqual(transport.signals, ["KILL"])
        protocol.childDataReceived(1, encode_ok())
        protocol.childDataReceived(2, b"late\n")
        self.assertNoResult(d)
        _end(protocol, signal=9)
        error = self.failureResultOf(d, ResponseTooLarge).value
        self.assertIsInstance(error, ProtocolError)
        self.assertIn("peer %s sent more than 16 MiB (16777216 bytes)" % (HOST,), str(error))
        self.assertIn("peer-serve", error.fix)
        self.reactor.advance(120)

    def test_reply_at_limit(self):
        """
        A response of exactly ``MAX_RESPONSE`` bytes is read and decoded.
        """
        d = self.peer.call("hello")
        protocol = self.reactor.spawned[0][0]
        pad = "x" * (MAX_RESPONSE - len(encode_ok(pad="")))
        response = encode_ok(pad=pad)
        self.assertEqual(len(response), MAX_RESPONSE)
        for start in range(0, len(response), 65536):
            protocol.childDataReceived(1, response[start:start + 65536])
        _end(protocol)
        self.assertEqual(self.successResultOf(d)["pad"], pad)
        self.assertEqual(self.reactor.spawned[0][5].signals, [])

    def test_smaller_limit(self):
        """
        ``max_response`` sets the limit.
        """
        peer = SSHPeer(self.reactor, CONFIG, HOST, environ={"PATH": self.bin},
                       max_response=1000)
        d = peer.call("hello")
        self.reactor.spawned[0][0].childDataReceived(1, b"x" * 1001)
        _end(self.reactor.spawned[0][0], signal=9)
        self.assertIn("more than 0.000953674 MiB (1000 bytes)",
                      str(self.failureResultOf(d, ResponseTooLarge).value))

    def test_stderr_bounded(self):
        """
        Only the last ``MAX_KEPT_STDERR`` bytes of ssh's stderr are kept:
        a process writing without end cannot grow the agent, and the line
        that says why ssh failed (at the end) is still there.
        """
        d = self.peer.call("hello")
        protocol = self.reactor.spawned[0][0]
        for _ in range(64):
            protocol.childDataReceived(2, b"debug1: noise\n" * 4096)
        protocol.childDataReceived(2, b"root@node-2: Permission denied (publickey).\r\n")
        _end(protocol, 255)
        error = self.failureResultOf(d, PeerPermissionDenied).value
        self.assertEqual(len(error.stderr), MAX_KEPT_STDERR)
        self.assertTrue(error.stderr.endswith(b"Permission denied (publickey).\r\n"))

    def test_killed_by_signal(self):
        """
        ssh killed by a signal someone else sent is a transport error.
        """
        d = self.peer.call("hello")
        _end(self.reactor.spawned[0][0], signal=9)
        self.failureResultOf(d, TransportError)

    def test_no_response(self):
        """
        A non-255 failure without a response is a ``ProtocolError`` quoting
        the remote stderr (here: peer-serve is not installed).
        """
        d = self.peer.call("hello")
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(2, b"sh: 1: flocker-zfs: not found\n")
        _end(protocol, 127)
        error = self.failureResultOf(d, ProtocolError).value
        self.assertIn("flocker-zfs: not found", str(error))
        self.assertIn("127", str(error))

    def test_garbage_on_success(self):
        """
        Exit status 0 with output that is not a response is a ``ProtocolError``.
        """
        d = self.peer.call("hello")
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(1, b"Welcome to node-2!\n")
        _end(protocol)
        self.failureResultOf(d, ProtocolError)

    def test_bad_request(self):
        """
        An invalid request fails with ``ProtocolError`` before any process.
        """
        self.failureResultOf(self.peer.call("destroy", DATASET), ProtocolError)
        self.failureResultOf(self.peer.call("state", "../../tank"), ProtocolError)
        self.assertEqual(self.reactor.spawned, [])

    def test_ssh_missing(self):
        """
        Without an ``ssh`` on PATH the call fails with a ``TransportError``
        saying so.
        """
        peer = SSHPeer(self.reactor, CONFIG, HOST, environ={"PATH": self.proc})
        error = self.failureResultOf(peer.call("hello"), TransportError).value
        self.assertIn("openssh-client", str(error))
        self.assertEqual(self.reactor.spawned, [])

    def test_timeout_kills(self):
        """
        ssh is killed after the timeout, failing with ``TransportTimeout``;
        its later end is ignored.
        """
        d = self.peer.call("hello")
        protocol, transport = self.reactor.spawned[0][0], self.reactor.spawned[0][5]
        self.reactor.advance(59)
        self.assertNoResult(d)
        self.reactor.advance(2)
        self.assertEqual(transport.signals, ["KILL"])
        error = self.failureResultOf(d, TransportTimeout).value
        self.assertIn("60 seconds", str(error))
        _end(protocol, signal=9)

    def test_cancel_kills(self):
        """
        Cancelling kills ssh and fails with ``CancelledError``, once.
        """
        d = self.peer.call("hello")
        protocol, transport = self.reactor.spawned[0][0], self.reactor.spawned[0][5]
        d.cancel()
        self.assertEqual(transport.signals, ["KILL"])
        self.failureResultOf(d, CancelledError)
        _end(protocol, signal=9)
        self.reactor.advance(120)

    @capture_logging(None)
    def test_logged(self, logger):
        """
        A call is a ``PEER_CALL`` action with peer, verb and args, holding a
        ``PEER_PROCESS`` action for ssh with its argv and status.
        """
        d = self.peer.call("state", DATASET)
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(1, encode_ok())
        _end(protocol)
        self.successResultOf(d)
        assertHasAction(self, logger, PEER_CALL, succeeded=True,
                        startFields={"peer": HOST, "verb": "state", "args": [DATASET]})
        [call] = LoggedAction.of_type(logger.messages, PEER_CALL)
        [process] = call.children
        self.assertEqual(process.start_message["action_type"], PEER_PROCESS)
        self.assertEqual(process.start_message["argv"], self.reactor.spawned[0][2])
        self.assertEqual(process.end_message["status"], 0)

    @capture_logging(None)
    def test_failure_logged(self, logger):
        """
        A failed call's action records the typed error and ssh's stderr.
        """
        d = self.peer.call("hello")
        protocol = self.reactor.spawned[0][0]
        protocol.childDataReceived(2, b"Permission denied (publickey).\r\n")
        _end(protocol, 255)
        self.failureResultOf(d, PeerPermissionDenied)
        assertHasAction(self, logger, PEER_CALL, succeeded=False, endFields={
            "exception": "flocker_zfs.errors.PeerPermissionDenied", "peer": HOST,
            "stderr": "Permission denied (publickey).\r\n"})
        [call] = LoggedAction.of_type(logger.messages, PEER_CALL)
        self.assertEqual(call.children[0].end_message["status"], 255)


class SSHPeerStreamTests(_PeerCase):
    """
    Tests for :meth:`SSHPeer.stream`.
    """

    def start(self, progress=None, peer=None):
        """
        Start a stream; return ``(d, sender, ssh)``, each process as
        ``(protocol, transport)``.
        """
        d = (peer or self.peer).stream(SEND, *RECEIVE, progress=progress)
        [sender, ssh] = self.reactor.spawned
        return d, (sender[0], sender[5]), (ssh[0], ssh[5])

    def test_pipeline(self):
        """
        The sender writes into a pipe that is ssh's stdin; the parent keeps
        no end of it and the sender's own stdin is closed.
        """
        before = _open_fds()
        self.peer.stream(SEND, *RECEIVE)
        self.assertEqual(_open_fds(), before)
        [sender, ssh] = self.reactor.spawned
        self.assertEqual((sender[1], sender[2]), (os.path.join(self.bin, "zfs"), SEND))
        self.assertEqual((ssh[1], ssh[2]), (os.path.join(self.bin, "ssh"),
                                            ssh_argv(CONFIG, HOST, request(*RECEIVE))))
        self.assertEqual((sender[4][0], sender[4][2]), ("w", "r"))
        self.assertEqual((ssh[4][1], ssh[4][2]), ("r", "r"))
        self.assertIsInstance(sender[4][1], int)
        self.assertIsInstance(ssh[4][0], int)
        self.assertTrue(sender[5].stdin_closed)

    def test_success(self):
        """
        Both ending well fires with the response and the bytes of the last
        ``/proc`` reading, taken when the response arrives.
        """
        d, (send, _), (ssh, ssh_transport) = self.start()
        _end(send)
        self.set_io(ssh_transport, rchar=5000)
        ssh.childDataReceived(1, encode_ok(received=True))
        _end(ssh)
        self.assertEqual(self.successResultOf(d), ({"ok": True, "received": True}, 5000))

    def test_bytes_from_response(self):
        """
        The server's ``bytes`` field, when present, is the count.
        """
        d, (send, _), (ssh, ssh_transport) = self.start()
        self.set_io(ssh_transport, rchar=5000)
        _end(send)
        ssh.childDataReceived(1, encode_ok(bytes=4321))
        _end(ssh)
        self.assertEqual(self.successResultOf(d)[1], 4321)

    def test_progress(self):
        """
        Every half second the larger of ssh's ``rchar`` and the sender's
        ``wchar`` is reported if it grew; the final count is reported too.
        """
        seen = []
        d, (send, send_transport), (ssh, ssh_transport) = self.start(progress=seen.append)
        self.reactor.advance(0.5)
        self.set_io(ssh_transport, rchar=100)
        self.reactor.advance(0.5)
        self.set_io(send_transport, wchar=300)
        self.reactor.advance(0.5)
        self.reactor.advance(0.5)
        self.set_io(ssh_transport, rchar=200)
        self.reactor.advance(0.5)
        self.assertEqual(seen, [100, 300])
        _end(send)
        ssh.childDataReceived(1, encode_ok(bytes=1000))
        _end(ssh)
        self.successResultOf(d)
        self.assertEqual(seen, [100, 300, 1000])
        self.reactor.advance(10)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_no_proc(self):
        """
        Without ``/proc`` there is no progress and the count is 0.
        """
        seen = []
        peer = SSHPeer(self.reactor, CONFIG, HOST, environ={"PATH": self.bin},
                       proc=os.path.join(self.proc, "missing"))
        d, (send, _), (ssh, _) = self.start(progress=seen.append, peer=peer)
        self.reactor.advance(5)
        _end(send)
        ssh.childDataReceived(1, encode_ok())
        _end(ssh)
        self.assertEqual(self.successResultOf(d), ({"ok": True}, 0))
        self.assertEqual(seen, [])

    def test_broken_progress(self):
        """
        A progress callback that raises does not stop the transfer.
        """
        d, (send, _), (ssh, ssh_transport) = self.start(progress=lambda n: 1 / 0)
        self.set_io(ssh_transport, rchar=100)
        self.reactor.advance(1)
        _end(send)
        ssh.childDataReceived(1, encode_ok())
        _end(ssh)
        self.assertEqual(self.successResultOf(d)[1], 100)
        self.flushLoggedErrors(ZeroDivisionError)

    def test_transport_side(self):
        """
        ssh exiting 255 is the transport side; the sender's broken pipe is
        among the others.
        """
        d, (send, _), (ssh, _) = self.start()
        ssh.childDataReceived(2, b"Connection reset by peer\r\n")
        _end(ssh, 255)
        _end(send, signal=13)
        error = self.failureResultOf(d, TransferFailed).value
        self.assertEqual(error.side, "transport")
        self.assertIsInstance(error.error, PeerUnreachable)
        self.assertEqual([e.status for e in error.others], [-13])

    def test_ssh_killed_by_someone(self):
        """
        ssh killed by a signal we did not send is the transport side.
        """
        d, (send, _), (ssh, _) = self.start()
        _end(ssh, signal=9)
        send.childDataReceived(2, b"warning: cannot send 'p/x@s': Broken pipe\n")
        _end(send, 1)
        self.assertEqual(self.failureResultOf(d, TransferFailed).value.side, "transport")

    def test_receiver_side(self):
        """
        The receiver's error response is the receiver side, whether the
        sender then died of SIGPIPE (OpenZFS) or said "Broken pipe" (zfs-fuse).
        """
        for status, signal, stderr in [(None, 13, b""), (141, None, b""),
                                       (1, None, b"cannot send 'p/x@s': Broken pipe\n")]:
            d, (send, _), (ssh, _) = self.start()
            ssh.childDataReceived(1, encode_error(DestinationModified(subject="p/x")))
            _end(ssh, 1)
            send.childDataReceived(2, stderr)
            _end(send, status, signal)
            error = self.failureResultOf(d, TransferFailed).value
            self.assertEqual((error.side, error.error.name), ("receiver", "DestinationModified"))
            self.assertEqual(len(error.others), 1)
            del self.reactor.spawned[:]

    def test_reply_too_large(self):
        """
        A receiver whose reply passes ``MAX_RESPONSE`` has ssh killed; the
        stream fails on the receiver side with ``ResponseTooLarge``, the
        sender's broken pipe being a consequence.
        """
        d, (send, send_transport), (ssh, ssh_transport) = self.start()
        chunk = b"y" * (1024 * 1024)
        for _ in range(MAX_RESPONSE // len(chunk) + 1):
            ssh.childDataReceived(1, chunk)
        self.assertEqual((ssh_transport.signals, send_transport.signals), (["KILL"], []))
        _end(ssh, signal=9)
        send.childDataReceived(2, b"cannot send 'p/x@s': Broken pipe\n")
        _end(send, 1)
        error = self.failureResultOf(d, TransferFailed).value
        self.assertEqual((error.side, type(error.error)), ("receiver", ResponseTooLarge))
        self.assertIn("peer %s sent more than 16 MiB" % (HOST,), error.summary())

    def test_stderr_bounded(self):
        """
        The sender's and ssh's stderr are kept only to their last
        ``MAX_KEPT_STDERR`` bytes.
        """
        d, (send, _), (ssh, _) = self.start()
        for _ in range(40):
            send.childDataReceived(2, b"s" * 8192)
            ssh.childDataReceived(2, b"t" * 8192)
        send.childDataReceived(2, b"\ncannot send 'p/x@s': I/O error\n")
        _end(send, 1)
        ssh.childDataReceived(1, encode_error(StreamIncomplete(subject="p/x")))
        _end(ssh, 1)
        error = self.failureResultOf(d, TransferFailed).value
        self.assertEqual(error.side, "sender")
        self.assertEqual(len(error.error.stderr), MAX_KEPT_STDERR)
        self.assertTrue(error.error.stderr.endswith(b"I/O error\n"))

    def test_receiver_side_sender_ok(self):
        """
        A receiver error after the whole stream was sent is the receiver side
        with no other errors.
        """
        d, (send, _), (ssh, _) = self.start()
        _end(send)
        ssh.childDataReceived(1, encode_error(StreamIncomplete(subject="p/x")))
        _end(ssh, 1)
        error = self.failureResultOf(d, TransferFailed).value
        self.assertEqual((error.side, error.error.name, error.others),
                         ("receiver", "StreamIncomplete", ()))

    def test_sender_side(self):
        """
        A sender failing by itself is the sender side, with its typed error;
        the receiver's complaint about the cut stream is a consequence.
        """
        d, (send, _), (ssh, _) = self.start()
        send.childDataReceived(2, b"cannot open 'p/x@s': dataset does not exist\n")
        _end(send, 1)
        ssh.childDataReceived(1, encode_error(StreamIncomplete(subject="p/x")))
        _end(ssh, 1)
        error = self.failureResultOf(d, TransferFailed).value
        self.assertEqual(error.side, "sender")
        self.assertIsInstance(error.error, DatasetNotFound)
        self.assertEqual(error.error.argv, tuple(SEND))
        self.assertIsInstance(error.others[0], RemoteError)

    def test_sender_failed_receiver_ok(self):
        """
        A failed sender is a failure even when the receiver said ok.
        """
        d, (send, _), (ssh, _) = self.start()
        _end(send, 2)
        ssh.childDataReceived(1, encode_ok())
        _end(ssh)
        self.assertEqual(self.failureResultOf(d, TransferFailed).value.side, "sender")

    def test_no_response(self):
        """
        ssh ending without a response (peer-serve missing) is the receiver
        side, quoting the remote stderr.
        """
        d, (send, _), (ssh, _) = self.start()
        ssh.childDataReceived(2, b"sh: 1: flocker-zfs: not found\n")
        _end(ssh, 127)
        _end(send, signal=13)
        error = self.failureResultOf(d, TransferFailed).value
        self.assertEqual(error.side, "receiver")
        self.assertIsInstance(error.error, ProtocolError)
        self.assertIn("not found", str(error))

    def test_ssh_failure_kills_sender(self):
        """
        When ssh fails and the sender does not end within the grace period,
        the sender is killed.
        """
        d, (send, send_transport), (ssh, ssh_transport) = self.start()
        ssh.childDataReceived(2, b"Timeout, server node-2 not responding.\r\n")
        _end(ssh, 255)
        self.reactor.advance(4.9)
        self.assertEqual(send_transport.signals, [])
        self.reactor.advance(0.2)
        self.assertEqual(send_transport.signals, ["KILL"])
        self.assertNoResult(d)
        _end(send, signal=9)
        error = self.failureResultOf(d, TransferFailed).value
        self.assertEqual(error.side, "transport")
        self.assertIsInstance(error.error, TransportTimeout)
        self.assertEqual(ssh_transport.signals, [])

    def test_sender_failure_kills_ssh(self):
        """
        When the sender fails and ssh does not end within the grace period,
        ssh is killed; the sender's error is the one reported.
        """
        d, (send, send_transport), (ssh, ssh_transport) = self.start()
        send.childDataReceived(2, b"cannot open 'p/x@s': dataset does not exist\n")
        _end(send, 1)
        self.reactor.advance(5.1)
        self.assertEqual((ssh_transport.signals, send_transport.signals), (["KILL"], []))
        _end(ssh, signal=9)
        error = self.failureResultOf(d, TransferFailed).value
        self.assertEqual(error.side, "sender")
        self.assertIsInstance(error.error, DatasetNotFound)
        self.assertIsInstance(error.others[0], TransportError)

    def test_no_kill_when_other_ends(self):
        """
        A process that ends by itself within the grace period is not killed.
        """
        d, (send, send_transport), (ssh, ssh_transport) = self.start()
        _end(ssh, 255)
        self.reactor.advance(1)
        _end(send, signal=13)
        self.reactor.advance(10)
        self.assertEqual((send_transport.signals, ssh_transport.signals), ([], []))
        self.failureResultOf(d, TransferFailed)

    def test_sender_done_ssh_waits(self):
        """
        A sender that finished well leaves ssh running (the receiver is
        finishing) however long it takes.
        """
        d, (send, _), (ssh, ssh_transport) = self.start()
        _end(send)
        self.reactor.advance(3600)
        self.assertEqual(ssh_transport.signals, [])
        self.assertNoResult(d)

    def test_cancel(self):
        """
        Cancelling kills both processes and fails once with
        ``CancelledError``; their later ends are ignored.
        """
        d, (send, send_transport), (ssh, ssh_transport) = self.start()
        d.cancel()
        self.assertEqual((send_transport.signals, ssh_transport.signals), (["KILL"], ["KILL"]))
        self.failureResultOf(d, CancelledError)
        _end(send, signal=9)
        _end(ssh, signal=9)
        self.reactor.advance(10)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_cancel_after_sender_ended(self):
        """
        Cancelling once the sender is gone kills only ssh.
        """
        d, (send, send_transport), (ssh, ssh_transport) = self.start()
        _end(send)
        d.cancel()
        self.assertEqual((send_transport.signals, ssh_transport.signals), ([], ["KILL"]))
        self.failureResultOf(d, CancelledError)

    def test_stream_timeout(self):
        """
        With a stream timeout, both processes are killed when it expires and
        the transfer fails on the transport side with ``TransportTimeout``.
        """
        peer = SSHPeer(self.reactor, CONFIG, HOST, stream_timeout=30,
                       environ={"PATH": self.bin}, proc=self.proc)
        d, (send, send_transport), (ssh, ssh_transport) = self.start(peer=peer)
        self.reactor.advance(31)
        self.assertEqual((send_transport.signals, ssh_transport.signals), (["KILL"], ["KILL"]))
        error = self.failureResultOf(d, TransferFailed).value
        self.assertEqual(error.side, "transport")
        self.assertIsInstance(error.error, TransportTimeout)
        _end(send, signal=9)
        _end(ssh, signal=9)

    def test_bad_request(self):
        """
        An invalid request fails with ``ProtocolError`` before any process
        or pipe exists.
        """
        before = _open_fds()
        d = self.peer.stream(SEND, "receive", DATASET, "full", "-F", "1", OWNER, 1)
        self.failureResultOf(d, ProtocolError)
        self.assertEqual((self.reactor.spawned, _open_fds()), ([], before))

    def test_sender_missing(self):
        """
        A sender not on PATH fails on the sender side with ``ZFSNotInstalled``.
        """
        d = self.peer.stream(["zfs-missing", "send"], *RECEIVE)
        error = self.failureResultOf(d, TransferFailed).value
        self.assertEqual(error.side, "sender")
        self.assertIsInstance(error.error, ZFSNotInstalled)
        self.assertEqual(self.reactor.spawned, [])

    @capture_logging(None)
    def test_logged(self, logger):
        """
        A stream is a ``PEER_STREAM`` action with its inputs, bytes and
        duration, holding one ``PEER_PROCESS`` action per process.
        """
        d, (send, _), (ssh, ssh_transport) = self.start()
        self.reactor.advance(2)
        _end(send)
        ssh.childDataReceived(1, encode_ok(bytes=77))
        _end(ssh)
        self.successResultOf(d)
        assertHasAction(self, logger, PEER_STREAM, succeeded=True, startFields={
            "peer": HOST, "verb": "receive", "send_argv": SEND,
            "args": [str(a) for a in RECEIVE[1:]]}, endFields={"bytes": 77, "duration": 2})
        [stream] = LoggedAction.of_type(logger.messages, PEER_STREAM)
        self.assertEqual([c.start_message["role"] for c in stream.children],
                         ["sender", "ssh"])

    @capture_logging(None)
    def test_failure_logged(self, logger):
        """
        A failed stream's action records the side and the error types.
        """
        d, (send, _), (ssh, _) = self.start()
        ssh.childDataReceived(1, encode_error(DestinationModified(subject="p/x")))
        _end(ssh, 1)
        _end(send, signal=13)
        self.failureResultOf(d, TransferFailed)
        assertHasAction(self, logger, PEER_STREAM, succeeded=False, endFields={
            "side": "receiver", "error": "RemoteError", "others": ["CommandFailed"]})


class RealSSHPeerLimitTests(TestCase):
    """
    The reply limit against a real sshd whose forced command writes without
    end (skipped without root and sshd, failing under ``CI=true``).
    """

    async def test_endless_reply(self):
        """
        A forced command that writes 100 MB of zeros instead of a response
        fails the call with ``ResponseTooLarge`` once 16 MiB arrived; this
        process does not grow by the reply, and the remote command is gone
        soon after ssh was killed.
        """
        from twisted.internet import reactor
        sshd = make_sshd(self)
        sshd.set_forced_command("exec head -c 100000000 /dev/zero")
        peer = SSHPeer(reactor, sshd.config, sshd.host)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with self.assertRaises(ResponseTooLarge) as caught:
            await peer.call("hello")
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        self.assertIn("peer 127.0.0.1:%d sent more than 16 MiB" % (sshd.port,),
                      str(caught.exception))
        # ru_maxrss is in KiB: the 16 MiB read, and not the 100 MB sent.
        self.assertLess(grown, 48 * 1024)
        for _ in range(100):
            if not any(_command(pid) == b"head" for pid in sshd.session_pids()):
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual([pid for pid in sshd.session_pids() if _command(pid) == b"head"], [])


def _command(pid):
    """:return: the command name of ``pid``, or ``None`` once it is gone."""
    try:
        with open("/proc/%d/comm" % (pid,), "rb") as handle:
            return handle.read().strip()
    except OSError:
        return None
