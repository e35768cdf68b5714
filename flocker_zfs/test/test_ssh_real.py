"""
Real-tier tests of the SSH transport (:mod:`flocker_zfs._ssh`,
:mod:`flocker_zfs._sshpeer`) against a private sshd on loopback
(:mod:`flocker_zfs.test.realssh`), with stand-in forced commands in place of
``flocker-zfs peer-serve``.  Skipped without root or sshd; failing instead
under ``CI=true``.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet import reactor
from twisted.internet.defer import CancelledError
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from .._protocol import parse_request, request
from .._ssh import ssh_argv
from .._sshpeer import SSHPeer
from ..errors import (
    HostKeyMismatch, InvalidName, PeerPermissionDenied, PeerUnreachable, TransferFailed,
    TransportTimeout)
from .realssh import free_port, make_sshd

DATASET = "6f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f"
OWNER = "0a1b2c3d-4e5f-4b7c-9e8f-6f1c2b5e3d4a"

#: Every character ZFS allows in a name component, and then some the shell
#: cares about.
ZFS_CHARACTERS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:- ")
SHELL_CHARACTERS = ";&|$`'\"\\()<>*?[]{}!#~%@/=\t\n^,+"

#: Writes 64 KiB at a time to stdout, slowly enough to be caught mid-stream,
#: for at most about 200 MB.
SLOW_WRITER = [sys.executable, "-c",
               "import os, time\n"
               "for _ in range(3200):\n"
               "    os.write(1, b'x' * 65536)\n"
               "    time.sleep(0.002)\n"]

#: The same without pauses: fills every buffer, then blocks.
FAST_WRITER = [sys.executable, "-c",
               "import os\n"
               "for _ in range(8000):\n"
               "    os.write(1, b'x' * 65536)\n"]

_RECORD_COMMAND = """#!%s
import json, os, sys
data = sys.stdin.buffer.read()
print(json.dumps({"ok": True, "command": os.environ.get("SSH_ORIGINAL_COMMAND"),
                  "stdin": len(data)}))
""" % (sys.executable,)

_RECORD_ARGV = """#!%s
import json, sys
print(json.dumps(sys.argv[1:]))
""" % (sys.executable,)

_RECEIVE = """#!/bin/sh
# Stand-in for peer-serve's receive: the stream goes to a file.
echo $$ > %(dir)s/remote.pid
exec 2>%(dir)s/remote.err
cat > %(dir)s/received || exit 1
echo '{"ok": true}'
"""

_REFUSE = """#!/bin/sh
# Stand-in for a receiver that fails early, like zfs receive on a modified
# replica: reads a little, then answers with an error.
head -c 1000 > /dev/null
echo '{"ok": false, "error": "DestinationModified", "message": "the replica was modified",'\
' "fix": "inspect it"}'
exit 1
"""


def _alive(pid):
    """
    :return: ``True`` if process ``pid`` exists and is not a zombie
        (``None``: a process already reaped when ``spawnProcess`` returned).
    """
    if pid is None:
        return False
    try:
        with open("/proc/%d/stat" % (pid,), "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:][:1] != b"Z"


class _RecordingReactor(object):
    """
    The global reactor, remembering the pid of every process spawned through
    it (a constructor seam for :class:`SSHPeer`).
    """

    def __init__(self):
        self.pids = []

    def spawnProcess(self, *args, **kwargs):
        transport = reactor.spawnProcess(*args, **kwargs)
        self.pids.append(transport.pid)
        return transport

    def __getattr__(self, name):
        return getattr(reactor, name)

    def kill_all(self):
        """
        Kill whatever is left (a failed test's clean-up).
        """
        for pid in self.pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


async def _sleep(seconds):
    await deferLater(reactor, seconds, lambda: None)


async def _until_gone(pids, seconds=10.0):
    """
    Wait until none of ``pids`` runs; :return: those still running.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        await _sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


class ShellQuotingTests(SynchronousTestCase):
    """
    The remote argv survives ssh and the remote shell (scenario 12): the
    forced command hands ``SSH_ORIGINAL_COMMAND`` to ``sh -c`` or
    ``bash -c`` exactly as a login without a forced command would, and a
    recorder prints the argv it got.
    """

    def setUp(self):
        self.sshd = make_sshd(self)
        self.recorder = self.sshd.write_script("argv.py", _RECORD_ARGV)

    def round_trip(self, shell, parts):
        self.sshd.set_forced_command('exec %s -c "$SSH_ORIGINAL_COMMAND"' % (shell,))
        argv = ssh_argv(self.sshd.config, self.sshd.host, [self.recorder] + parts)
        result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                                timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), parts)

    _parts = st.lists(st.one_of(
        st.text(st.sampled_from(ZFS_CHARACTERS + SHELL_CHARACTERS)),
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")),
    ), max_size=6)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_parts)
    def test_sh(self, parts):
        """
        Any argv comes back unchanged through ``sh`` (dash).
        """
        self.round_trip("/bin/sh", parts)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_parts)
    def test_bash(self, parts):
        """
        Any argv comes back unchanged through ``bash``.
        """
        self.round_trip("/bin/bash", parts)

    def test_every_zfs_character(self):
        """
        A part made of every character ZFS allows in names, and one of every
        shell metacharacter, come back unchanged through both shells.
        """
        for shell in ("/bin/sh", "/bin/bash"):
            self.round_trip(shell, [ZFS_CHARACTERS, SHELL_CHARACTERS, "", " lead", "trail "])

    def test_hostile_host_is_not_an_option(self):
        """
        Even past validation, ``--`` keeps a host like ``-oProxyCommand=...``
        from being an option (scenario 11): nothing runs.
        """
        pwned = os.path.join(self.sshd.directory, "pwned")
        host = "-oProxyCommand=touch " + pwned
        self.assertRaises(InvalidName, ssh_argv, self.sshd.config, host, ["x"])
        argv = ssh_argv(self.sshd.config, self.sshd.host, ["x"])
        argv[-2] = host
        result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                                timeout=30)
        self.assertEqual(result.returncode, 255)
        self.assertFalse(os.path.exists(pwned))


class SSHPeerCallRealTests(TestCase):
    """
    :meth:`SSHPeer.call` against the private sshd.
    """

    def setUp(self):
        self.sshd = make_sshd(self)
        self.sshd.set_forced_command(self.sshd.write_script("record.py", _RECORD_COMMAND))
        self.reactor = _RecordingReactor()
        self.addCleanup(self.reactor.kill_all)

    def peer(self, **config):
        return SSHPeer(self.reactor, self.sshd.config.set(**config), self.sshd.host)

    async def test_requests_round_trip(self):
        """
        Each request arrives as ``SSH_ORIGINAL_COMMAND`` that splits back into
        it and parses as the same request; the server's stdin is empty.
        """
        snapshot = ("flocker-" + ZFS_CHARACTERS.replace(" ", ""))[:64]
        requests = [("hello",), ("state", DATASET),
                    ("receive", DATASET, "full", snapshot, "18446744073709551615", OWNER, 7),
                    ("receive", DATASET, "resume", "a", "0", OWNER, 0),
                    ("acquire", DATASET, 8, "123456789", OWNER), ("abort-receive", DATASET)]
        peer = self.peer()
        for verb, *args in requests:
            response = await peer.call(verb, *args)
            self.assertEqual(shlex.split(response["command"]), request(verb, *args))
            self.assertEqual(parse_request(response["command"])[0], verb)
            self.assertEqual(response["stdin"], 0)

    async def test_host_key_changed(self):
        """
        A changed host key fails with ``HostKeyMismatch`` without a prompt,
        leaving known_hosts unchanged and no session started (scenario 30).
        """
        with open(self.sshd.known_hosts, "rb") as handle:
            pinned = handle.read()
        self.sshd.regenerate_host_key()
        with self.assertRaises(HostKeyMismatch) as caught:
            await self.peer().call("hello")
        self.assertIn("REMOTE HOST IDENTIFICATION HAS CHANGED", caught.exception.stderr.decode())
        with open(self.sshd.known_hosts, "rb") as handle:
            self.assertEqual(handle.read(), pinned)
        self.assertEqual(sorted(os.listdir(self.sshd.directory)).count("known_hosts.old"), 0)
        self.assertNotIn("Starting session", self.sshd.log())

    async def test_host_key_unknown(self):
        """
        A host missing from known_hosts fails with ``HostKeyMismatch``; the
        key is not added.
        """
        open(self.sshd.known_hosts, "w").close()
        with self.assertRaises(HostKeyMismatch):
            await self.peer().call("hello")
        self.assertEqual(os.path.getsize(self.sshd.known_hosts), 0)

    async def test_wrong_key(self):
        """
        A key the server does not know fails with ``PeerPermissionDenied``
        (scenario 31).
        """
        other = self.sshd.make_key("other_key")
        with self.assertRaises(PeerPermissionDenied):
            await self.peer(identity=other).call("hello")

    async def test_key_removed(self):
        """
        Once our key is removed from authorized_keys, calls fail with
        ``PeerPermissionDenied``.
        """
        open(self.sshd.authorized_keys, "w").close()
        with self.assertRaises(PeerPermissionDenied):
            await self.peer().call("hello")

    async def test_closed_port(self):
        """
        Nothing listening fails with ``PeerUnreachable`` at once (scenario 29).
        """
        peer = SSHPeer(self.reactor, self.sshd.config.set(connect_timeout=3),
                       self.sshd.host, port=free_port())
        started = time.monotonic()
        with self.assertRaises(PeerUnreachable):
            await peer.call("hello")
        self.assertLess(time.monotonic() - started, 3)

    async def test_listener_stopped(self):
        """
        A listener that accepts but never answers fails within
        ``ConnectTimeout`` (plus a margin).
        """
        self.sshd.sigstop()
        self.addCleanup(self.sshd.sigcont)
        started = time.monotonic()
        with self.assertRaises((PeerUnreachable, TransportTimeout)):
            await self.peer(connect_timeout=2).call("hello")
        self.assertLess(time.monotonic() - started, 2 + 3)


class SSHPeerStreamRealTests(TestCase):
    """
    :meth:`SSHPeer.stream` from a local command into a forced command.
    """

    def setUp(self):
        self.sshd = make_sshd(self)
        self.directory = self.sshd.directory
        self.received = os.path.join(self.directory, "received")
        self.sshd.set_forced_command(self.sshd.write_script(
            "receive.sh", _RECEIVE % {"dir": self.directory}))
        self.reactor = _RecordingReactor()
        self.addCleanup(self.reactor.kill_all)

    def peer(self, **config):
        return SSHPeer(self.reactor, self.sshd.config.set(**config), self.sshd.host, grace=2)

    def stream(self, peer, send_argv, progress=None):
        return peer.stream(send_argv, "receive", DATASET, "full", "flocker-1", "1", OWNER, 1,
                           progress=progress)

    def remote_started(self):
        return os.path.exists(os.path.join(self.directory, "remote.pid"))

    def remote_pid(self):
        with open(os.path.join(self.directory, "remote.pid")) as handle:
            return int(handle.read())

    async def assert_all_gone(self):
        """
        Neither local process nor the remote command is left running.
        """
        self.assertEqual(await _until_gone(self.reactor.pids, 1), [])
        self.assertEqual(await _until_gone([self.remote_pid()]), [])

    async def test_byte_identical(self):
        """
        A 5 MB stream arrives byte-identical; progress and the count come
        from ``/proc`` (ssh reads a few KiB for itself too).
        """
        source = os.path.join(self.directory, "source")
        with open(source, "wb") as handle:
            handle.write(os.urandom(5000000))
        seen = []
        response, sent = await self.stream(
            self.peer(), ["sh", "-c", "head -c 5000000 " + shlex.quote(source)],
            progress=seen.append)
        self.assertEqual(response, {"ok": True})
        with open(source, "rb") as a, open(self.received, "rb") as b:
            self.assertTrue(a.read() == b.read(), "the received bytes differ")
        self.assertTrue(5000000 <= sent <= 5000000 + 256 * 1024, sent)
        self.assertEqual(seen[-1], sent)
        self.assertEqual(seen, sorted(seen))
        await self.assert_all_gone()

    async def test_ssh_killed(self):
        """
        Killing ssh mid-stream fails on the transport side; the sender and
        the remote command end too (scenario 32).
        """
        peer = self.peer()
        killed = []

        def progress(count):
            # Once the remote command runs: sshd buffers a window of data
            # first, and on a slow machine it may not have started yet.
            if count > 1000000 and not killed and self.remote_started():
                killed.append(count)
                os.kill(self.reactor.pids[1], signal.SIGKILL)

        with self.assertRaises(TransferFailed) as caught:
            await self.stream(peer, SLOW_WRITER, progress)
        self.assertEqual(caught.exception.side, "transport")
        self.assertTrue(killed)
        await self.assert_all_gone()

    async def test_cancel(self):
        """
        Cancelling mid-stream kills both processes and fails once with
        ``CancelledError``; the remote command ends (scenario 38).
        """
        peer = self.peer()
        calls = []

        def progress(count):
            if count > 1000000 and not calls and self.remote_started():
                calls.append(count)
                d.cancel()

        d = self.stream(peer, SLOW_WRITER, progress)
        with self.assertRaises(CancelledError):
            await d
        await self.assert_all_gone()

    async def test_receiver_fails(self):
        """
        A receiver that answers an error mid-stream is the receiver side,
        carrying the server's error name; the sender's broken pipe is only
        among the others (scenario 33).
        """
        self.sshd.set_forced_command(self.sshd.write_script("refuse.sh", _REFUSE))
        with self.assertRaises(TransferFailed) as caught:
            await self.stream(self.peer(), SLOW_WRITER)
        error = caught.exception
        self.assertEqual((error.side, error.error.name), ("receiver", "DestinationModified"))
        self.assertEqual(len(error.others), 1)
        self.assertEqual(await _until_gone(self.reactor.pids, 1), [])

    async def test_permission_denied(self):
        """
        A refused key fails on the transport side with
        ``PeerPermissionDenied``, and the sender does not hang.
        """
        other = self.sshd.make_key("other_key")
        with self.assertRaises(TransferFailed) as caught:
            await self.stream(self.peer(identity=other), FAST_WRITER)
        self.assertEqual(caught.exception.side, "transport")
        self.assertIsInstance(caught.exception.error, PeerPermissionDenied)
        self.assertEqual(await _until_gone(self.reactor.pids, 1), [])

    async def test_silent_partition(self):
        """
        Stopping the sshd session mid-stream fails with ``TransportTimeout``
        within the keep-alive bound, and nothing is left running locally
        (scenario 34).
        """
        stopped = []

        def progress(count):
            if count > 1000000 and not stopped:
                stopped.append(time.monotonic())
                pids = self.sshd.sigstop_sessions()
                self.addCleanup(self.sshd.sigcont_sessions, pids)

        peer = self.peer(server_alive_interval=1, server_alive_count=2)
        with self.assertRaises(TransferFailed) as caught:
            await self.stream(peer, FAST_WRITER, progress)
        elapsed = time.monotonic() - stopped[0]
        self.assertEqual(caught.exception.side, "transport")
        self.assertIsInstance(caught.exception.error, TransportTimeout)
        # interval x count, plus the grace period and a margin.
        self.assertLess(elapsed, 1 * 2 + 2 + 4)
        self.assertEqual(await _until_gone(self.reactor.pids, 3), [])


class PrivateSSHDTests(SynchronousTestCase):
    """
    Tests for the :mod:`flocker_zfs.test.realssh` fixture itself.
    """

    def test_cleanup(self):
        """
        Clean-up kills the listener and its sessions (even stopped ones) and
        removes the private directory.
        """
        sshd = make_sshd(self)
        sshd.set_forced_command("sleep 60")
        argv = ssh_argv(sshd.config, sshd.host, ["x"])
        client = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        self.addCleanup(client.wait)
        self.addCleanup(client.kill)
        deadline = time.monotonic() + 10
        while not any(b"sleep" in open("/proc/%d/cmdline" % (pid,), "rb").read()
                      for pid in sshd.session_pids() if _alive(pid)):
            self.assertLess(time.monotonic(), deadline, "the session did not start")
            time.sleep(0.05)
        pids = [sshd.pid] + sshd.sigstop_sessions()
        sshd.cleanup()
        self.assertEqual([pid for pid in pids if _alive(pid)], [])
        self.assertFalse(os.path.exists(sshd.directory))
        self.assertEqual(client.wait(timeout=10), 255)
