# test-case-name: flocker_zfs.test.test_ssh_real
"""
A private ``sshd`` on loopback for real-tier tests, never the system's.

:func:`make_sshd` starts ``/usr/sbin/sshd -D`` on a free 127.0.0.1 port with
its own temporary directory: a fresh ed25519 host key, an ``sshd_config``
(root only through forced commands, public keys only, no forwarding, no PAM,
``StrictModes no`` because the directory is a temporary one), a client key
pair, a ``known_hosts`` pinning the host key for ``[127.0.0.1]:PORT`` and an
``authorized_keys`` whose entries are ``restrict,command="..."``.  Neither
``/etc/ssh`` nor ``/root/.ssh`` is read or changed.  The test's clean-up
kills the daemon and every process it started, then removes the directory::

    async def test_something(self):
        sshd = make_sshd(self)
        serve = sshd.write_script("serve", "#!/bin/sh\\necho '{\\"ok\\": true}'\\n")
        sshd.set_forced_command(serve)     # restrict,command="<serve>" <client key>
        peer = SSHPeer(reactor, sshd.config, sshd.host)
        await peer.call("hello")           # {"ok": True}

Without root, ``sshd`` or ``ssh-keygen`` the test is skipped, or fails under
``CI=true`` (:func:`flocker_zfs.test.realzfs.skip_or_fail`).  This is fixture
code: it blocks (``subprocess``) while it sets up and tears down.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from .._ssh import SSHConfig
from .realzfs import skip_or_fail

__all__ = ["SSHD", "PrivateSSHD", "require_sshd", "make_sshd", "free_port"]

#: The OpenSSH server binary (Debian package openssh-server).
SSHD = "/usr/sbin/sshd"

#: sshd's privilege-separation directory; it refuses to start without it.
PRIVSEP_DIR = "/run/sshd"

#: Environment variable set in every session, to the private directory.
MARKER = "FLOCKER_ZFS_TEST_SSHD"

_SSHD_CONFIG = """\
# Private test sshd (flocker_zfs/test/realssh.py); not the system's.
ListenAddress 127.0.0.1
Port {port}
HostKey {directory}/ssh_host_ed25519_key
PidFile {directory}/sshd.pid
AuthorizedKeysFile {directory}/authorized_keys
# As in production: root may only run the forced command of its key.
PermitRootLogin forced-commands-only
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The directory is a temporary one, not root's home.
StrictModes no
PermitUserEnvironment no
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
# No Subsystem lines: no sftp.
# Sessions get SHLVL=1: bash, run by sshd as root's login shell, then skips
# ~/.bashrc (it reads it only when SHLVL < 2); this machine's dotfiles are not
# under test and may be slow.  The marker lets clean-up find every process
# of our sessions, even those orphaned when a client went away.
SetEnv SHLVL=1 {marker}={directory}
LogLevel VERBOSE
"""


def require_sshd():
    """
    Make sure a private sshd can run here, or skip (fail under CI).

    :return: the path of ``ssh-keygen``.
    """
    if os.geteuid() != 0:
        skip_or_fail("real SSH tests need root (run: sudo bash scripts/test)")
    if not os.access(SSHD, os.X_OK):
        skip_or_fail("%s is missing: install openssh-server (scripts/setup does)" % (SSHD,))
    keygen = shutil.which("ssh-keygen")
    if keygen is None or shutil.which("ssh") is None:
        skip_or_fail("ssh or ssh-keygen is missing: install openssh-client")
    return keygen


def free_port():
    """
    :return: a TCP port on 127.0.0.1 that nothing listened on a moment ago.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children():
    """
    :return: ``{ppid: [pid, ...]}`` of every process, from ``/proc``.
    """
    tree = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % (name,), "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces.
        fields = stat[stat.rindex(b")") + 2:].split()
        tree.setdefault(int(fields[1]), []).append(int(name))
    return tree


def descendants(pid):
    """
    :return: the ids of every live descendant of ``pid``, parents first.
    """
    tree = _children()
    found, todo = [], [pid]
    while todo:
        for child in tree.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def marked(marker, value):
    """
    :return: the ids of processes whose environment has ``marker=value``.
    """
    wanted = ("%s=%s" % (marker, value)).encode("utf-8")
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/environ" % (name,), "rb") as handle:
                    if wanted in handle.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                continue
    return found


def _running(pid):
    """
    :return: ``True`` if ``pid`` exists and is not a zombie.
    """
    try:
        with open("/proc/%d/stat" % (pid,), "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:][:1] != b"Z"


def _signal(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class PrivateSSHD(object):
    """
    A running private sshd and its files.

    :ivar str host: ``"127.0.0.1"``.
    :ivar int port: where it listens.
    :ivar str directory: its private directory (removed by :meth:`cleanup`).
    :ivar str client_key: the client's private key (0600); ``client_key +
        ".pub"`` is the public half.
    :ivar str known_hosts: a file pinning the current host key.
    :ivar str authorized_keys: the file sshd reads keys from.
    :ivar str log_path: sshd's log (``LogLevel VERBOSE``).
    :ivar SSHConfig config: a client config for this server (short
        timeouts; change it with ``config.set(...)``).
    """

    host = "127.0.0.1"

    def __init__(self, directory, keygen):
        self.directory = directory
        self._keygen = keygen
        self._process = None
        self.port = None
        self.config_path = os.path.join(directory, "sshd_config")
        self.host_key = os.path.join(directory, "ssh_host_ed25519_key")
        self.client_key = os.path.join(directory, "client_key")
        self.known_hosts = os.path.join(directory, "known_hosts")
        self.authorized_keys = os.path.join(directory, "authorized_keys")
        self.log_path = os.path.join(directory, "sshd.log")
        self.config = None

    def make_key(self, name):
        """
        Create a new ed25519 key pair without passphrase in the directory.

        :return: the private key's path (the public key is ``path + ".pub"``).
        """
        path = os.path.join(self.directory, name)
        for stale in (path, path + ".pub"):
            if os.path.exists(stale):
                os.remove(stale)
        subprocess.run([self._keygen, "-q", "-t", "ed25519", "-N", "", "-C",
                        "flocker-zfs-test-" + name, "-f", path],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True)
        os.chmod(path, 0o600)
        return path

    def setup(self):
        """
        Make the keys, the known_hosts and the config, and start sshd.
        """
        os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)
        self.make_key("ssh_host_ed25519_key")
        self.make_key("client_key")
        with open(self.authorized_keys, "w"):
            pass
        for attempt in range(5):
            self.port = free_port()
            with open(self.config_path, "w") as handle:
                handle.write(_SSHD_CONFIG.format(port=self.port, directory=self.directory,
                                                 marker=MARKER))
            if self.start():
                break
        else:
            raise RuntimeError("the private sshd did not start; its log:\n" + self.log())
        self.pin_host_key()
        self.config = SSHConfig(identity=self.client_key, known_hosts=self.known_hosts,
                                port=self.port, connect_timeout=5, server_alive_interval=2,
                                server_alive_count=3)

    def pin_host_key(self):
        """
        Write ``known_hosts`` with the current host key for ``[host]:port``.
        """
        with open(self.host_key + ".pub") as handle:
            key_type, key = handle.read().split()[:2]
        with open(self.known_hosts, "w") as handle:
            handle.write("[%s]:%d %s %s\n" % (self.host, self.port, key_type, key))

    def start(self, wait=10.0):
        """
        Start the listener (``sshd -D``) and wait until its port accepts.

        :return: ``True`` once it accepts, ``False`` if it exited first (the
            port may have been taken meanwhile).
        """
        self._process = subprocess.Popen(
            [SSHD, "-D", "-f", self.config_path, "-E", self.log_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the private sshd does not accept connections; its log:\n"
                           + self.log())

    @property
    def pid(self):
        """
        The listener's process id, or ``None`` when stopped.
        """
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def authorize(self, command, public_key=None):
        """
        Add an ``authorized_keys`` line ``restrict,command="<command>" <key>``.

        :param str command: the forced command (run by root's login shell
            with ``-c``; the client's request is in ``SSH_ORIGINAL_COMMAND``).
        :param public_key: the ``.pub`` path; the client key by default.
        """
        if "\n" in command:
            raise ValueError("a forced command is one line")
        with open(public_key or self.client_key + ".pub") as handle:
            key = " ".join(handle.read().split()[:2])
        # sshd's only escape inside the quoted value is \" (auth-options.c).
        with open(self.authorized_keys, "a") as handle:
            handle.write('restrict,command="%s" %s\n' % (command.replace('"', '\\"'), key))

    def set_forced_command(self, command, public_key=None):
        """
        Make ``command`` the only entry of ``authorized_keys``.
        """
        with open(self.authorized_keys, "w"):
            pass
        self.authorize(command, public_key)

    def write_script(self, name, text):
        """
        Write an executable file in the private directory.

        :return: its path.
        """
        path = os.path.join(self.directory, name)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o755)
        return path

    def regenerate_host_key(self):
        """
        Give the server a new host key (restarting it on the same port);
        ``known_hosts`` keeps the old one, as after a peer's reinstall.
        """
        self.stop()
        self.make_key("ssh_host_ed25519_key")
        if not self.start():
            raise RuntimeError("the private sshd did not restart; its log:\n" + self.log())

    def session_pids(self):
        """
        :return: the ids of the processes serving connections now (the
            listener's descendants: per-connection sshd and forced commands).
        """
        pid = self.pid
        return [] if pid is None else descendants(pid)

    def sigstop(self):
        """
        Stop (SIGSTOP) the listener: new connections hang before the banner.
        """
        os.kill(self.pid, signal.SIGSTOP)

    def sigcont(self):
        """
        Continue the listener after :meth:`sigstop`.
        """
        os.kill(self.pid, signal.SIGCONT)

    def sigstop_sessions(self):
        """
        Stop every process serving a connection: a silent partition for the
        connections already open.

        :return: the stopped pids.
        """
        pids = self.session_pids()
        _signal(pids, signal.SIGSTOP)
        return pids

    def sigcont_sessions(self, pids=None):
        """
        Continue the processes stopped by :meth:`sigstop_sessions`.
        """
        _signal(self.session_pids() if pids is None else pids, signal.SIGCONT)

    def stop(self):
        """
        Kill the listener and every process it started, including session
        processes orphaned earlier.
        """
        if self._process is None:
            return
        pids = []
        if self._process.poll() is None:
            pids = [self._process.pid] + descendants(self._process.pid)
        pids += marked(MARKER, self.directory)
        # SIGKILL works on stopped processes too; no SIGCONT needed.
        _signal(pids, signal.SIGKILL)
        self._process.wait()
        self._process = None
        # The others are reaped by init (their parents died too): wait for it.
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)

    def log(self):
        """
        :return: sshd's log so far (``str``).
        """
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def cleanup(self):
        """
        Stop the daemon and remove the private directory.
        """
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def make_sshd(case):
    """
    Start a private sshd for one test, stopped and removed by its clean-up.

    :param case: the running test (``addCleanup`` is used).
    :return: the :class:`PrivateSSHD`, with no authorized key yet.
    :raises SkipTest: without root, sshd or ssh-keygen (``FailTest`` under CI).
    """
    keygen = require_sshd()
    sshd = PrivateSSHD(tempfile.mkdtemp(prefix="flocker-zfs-sshd-"), keygen)
    case.addCleanup(sshd.cleanup)
    sshd.setup()
    return sshd
