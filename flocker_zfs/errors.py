# test-case-name: flocker_zfs.test.test_errors
"""
The typed errors of flocker-zfs.

Every failure a user can see is one of these.  Each has a one-line ``str``
that names the cause and a ``fix`` that says what to do about it, so callers
(and the CLI) never need to show a traceback for a user mistake.

Errors from commands (:class:`ZFSError` and its leaves) carry the argv, the
exit status and stderr of the command; :func:`error_for` picks the leaf from
stderr, checking per-operation patterns before the common ones.
"""

import re
import shlex

from eliot import register_exception_extractor


class FlockerZFSError(Exception):
    """
    Base of every error raised by flocker-zfs.

    :ivar str fix: what the user should do about it.
    """

    fix = ""

    def summary(self):
        """
        :return: the one-line description of the cause, without the fix.
        """
        return Exception.__str__(self)

    def __str__(self):
        text = self.summary()
        if self.fix:
            text = "%s. Fix: %s" % (text.rstrip("."), self.fix)
        return text


class ConfigError(FlockerZFSError, ValueError):
    """
    The configuration is invalid; nothing was changed.
    """

    fix = "Correct the configuration and try again."

    def __init__(self, message, fix=None):
        FlockerZFSError.__init__(self, message)
        if fix is not None:
            self.fix = fix


class InvalidName(ConfigError):
    """
    A name (dataset id, snapshot name, pool, host, path) is not acceptable.

    Raised before any command runs.
    """

    fix = "Use a name made only of the allowed characters."


class InvalidDatasetId(InvalidName):
    """
    A dataset id is not a canonical lowercase UUID.
    """

    fix = ('Dataset ids are lowercase UUIDs such as '
           '"6f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f"; '
           'generate one with `python3 -c "import uuid; print(uuid.uuid4())"`.')


class NameTooLong(InvalidName):
    """
    A ZFS name would exceed the 255-byte limit.
    """

    fix = "Use a shorter pool name or snapshot name."


class NotManaged(FlockerZFSError):
    """
    A dataset exists but is not managed by flocker-zfs, so it is left alone.
    """

    fix = ("flocker-zfs only touches datasets it created (those with "
           "flocker:managed=yes); choose another dataset id or remove the "
           "foreign dataset yourself.")


class NotOwner(FlockerZFSError):
    """
    The operation needs the dataset's owner, and this node holds a replica.
    """

    fix = "Run it on the owning node, or hand the dataset off to this node first."


class DatasetInUse(FlockerZFSError):
    """
    Processes have files open for writing in the dataset, so it cannot be
    handed off safely now; nothing was changed.
    """

    fix = ("Stop the application using the dataset (or have it close its files), then "
           "hand it off again.")


class ForeignSnapshots(FlockerZFSError):
    """
    Destroying the dataset would also destroy snapshots flocker-zfs did not take.
    """

    fix = ("Check who made them (another snapshot tool?); destroy them yourself or "
           "destroy with force=True (CLI: --force) to remove them too.")


class MountRootError(ConfigError):
    """
    The mount root cannot be used.
    """

    fix = "Use an absolute path to a directory that root can create and write."


class ZFSError(FlockerZFSError):
    """
    A ``zfs``/``zpool`` command did not do what was asked.

    :ivar tuple argv: the command.
    :ivar int status: its exit status (negative: killed by that signal).
    :ivar bytes stderr: what it wrote on stderr.
    """

    fix = "See the command's error message."
    cause = "command failed"

    def __init__(self, argv=(), status=None, stderr=b"", subject=None):
        FlockerZFSError.__init__(self, argv, status, stderr)
        self.argv = tuple(argv)
        self.status = status
        self.stderr = stderr
        self.subject = subject

    def message(self):
        """
        :return: the first meaningful line of stderr, decoded.
        """
        lines = [line.strip() for line in
                 self.stderr.decode("utf-8", "replace").splitlines()]
        lines = [line for line in lines if line]
        return lines[0] if lines else ""

    def summary(self):
        text = self.cause
        if self.subject:
            text = "%s: %s" % (text, self.subject)
        detail = self.message()
        if detail:
            text = "%s (%s)" % (text, detail)
        if not self.argv:
            return text
        return "%s [`%s` exited %s]" % (
            text, shlex.join(self.argv), self.status)


class DatasetNotFound(ZFSError):
    """The dataset (or snapshot) does not exist."""
    cause = "dataset not found"
    fix = "Check the dataset id; `flocker-zfs status` lists the datasets."


class DatasetExists(ZFSError):
    """The dataset (or snapshot) already exists."""
    cause = "dataset already exists"
    fix = "Use another dataset id or snapshot name, or destroy the existing one first."


class DatasetBusy(ZFSError):
    """The dataset is in use (mounted and open, held, or has dependent clones)."""
    cause = "dataset is busy"
    fix = ("Stop the processes using its mountpoint (see `fuser -vm PATH`), "
           "release holds, or destroy dependent clones, then retry.")


class HasDependentClones(DatasetBusy):
    """A snapshot of the dataset is the origin of a clone."""
    cause = "dataset has dependent clones"
    fix = "Destroy the clones made from its snapshots first (`flocker-zfs status` shows them)."


class OutOfSpace(ZFSError):
    """The pool (or the dataset's quota) has no room left."""
    cause = "out of space"
    fix = "Free space in the pool (destroy unneeded datasets or snapshots) or grow the pool."


class QuotaTooSmall(ZFSError):
    """The requested maximum size is below what the dataset already uses."""
    cause = "maximum size is smaller than the space the dataset already uses"
    fix = ("Choose a maximum size at least as large as the dataset's used space, "
           "or delete data first.")


class PoolNotFound(ZFSError):
    """The configured pool does not exist (or is not imported)."""
    cause = "pool not found"

    @property
    def fix(self):
        pool = self.subject or "flocker"
        return ("Create it, for example on a file: `truncate -s 10G /var/lib/flocker/%s.img && "
                "zpool create %s /var/lib/flocker/%s.img`, or import it with `zpool import %s`."
                % (pool, pool, pool, pool))


class PoolUnhealthy(ZFSError):
    """The pool exists but is not usable (FAULTED, UNAVAIL, SUSPENDED...)."""
    cause = "pool is not healthy"
    fix = "Check `zpool status` and repair or re-import the pool."

    def __init__(self, argv=(), status=None, stderr=b"", subject=None, health=None):
        ZFSError.__init__(self, argv, status, stderr, subject)
        self.health = health

    def message(self):
        return "health is %s" % (self.health,)


class PermissionDenied(ZFSError):
    """The command was not allowed to do this."""
    cause = "permission denied"
    fix = "Run as root, or delegate the permission with `zfs allow`."


class ZFSNotInstalled(ZFSError):
    """The ``zfs``/``zpool`` executables cannot be run."""
    cause = "ZFS is not installed"
    fix = ("Install ZFS: `apt-get install zfsutils-linux` (OpenZFS, Debian contrib) "
           "or `apt-get install zfs-fuse`.")


class ZFSNotRunning(ZFSError):
    """The ZFS service (the zfs-fuse daemon) is not running."""
    cause = "ZFS is not running"
    fix = "Start the daemon: `zfs-fuse` (or `systemctl start zfs-fuse`)."


class CommandTimedOut(ZFSError):
    """The command did not finish in time and was killed."""
    cause = "command timed out and was killed"
    fix = ("Check that ZFS is responsive (`zpool status`); raise the timeout if the pool "
           "is just slow.")


class UnexpectedOutput(ZFSError):
    """The command succeeded but its output could not be understood."""
    cause = "unexpected output"
    fix = "This ZFS version prints something flocker-zfs does not understand; please report it."

    def __init__(self, argv, detail, stdout=b""):
        ZFSError.__init__(self, argv, 0, detail.encode("utf-8", "replace"))
        self.stdout = stdout


class CommandFailed(ZFSError):
    """A command failed for a reason without a more specific error."""
    cause = "command failed"


# -- receive ---------------------------------------------------------------

class DestinationModified(ZFSError):
    """The replica was changed since its newest snapshot; an incremental cannot apply."""
    cause = "the replica was modified since its newest snapshot"
    fix = ("Someone wrote to the read-only replica. flocker-zfs never discards that "
           "automatically: inspect it, then destroy the replica on that node "
           "(`flocker-zfs destroy --force ID` there) so the next push sends it again.")


class BaseMismatch(ZFSError):
    """The replica's newest snapshot is not the stream's incremental base."""
    cause = "the replica's newest snapshot is not the incremental base"
    fix = ("The replica has diverged (snapshots newer than the common base, or a "
           "different lineage); compare `flocker-zfs status` on both nodes.")


class StreamIncomplete(ZFSError):
    """The stream ended early or was corrupt; the replica is unchanged."""
    cause = "the stream was incomplete or corrupt"
    fix = "Retry the transfer; the replica kept its last complete snapshot."


class DestinationExists(ZFSError):
    """A full stream was sent to a peer that already has the dataset."""
    cause = "the peer already has this dataset"
    fix = "Push again: an incremental from the common snapshot is needed, not a full stream."


#: Patterns for ``zfs receive`` failures (OpenZFS and zfs-fuse wording),
#: checked before :data:`COMMON`.
RECEIVE_ERRORS = (
    (DestinationModified, re.compile(rb"has been modified\s+since most recent snapshot")),
    (BaseMismatch, re.compile(rb"does not\s+match incremental source|"
                              rb"incremental source .* no longer exists")),
    (StreamIncomplete, re.compile(rb"incomplete stream|invalid backup stream|"
                                  rb"checksum mismatch")),
    (DestinationExists, re.compile(rb"destination '[^']*' exists|destination has snapshots")),
)


# -- replication ---------------------------------------------------------------

class NoCommonSnapshot(FlockerZFSError):
    """
    The peer has a copy of the dataset but no snapshot in common with ours.
    """

    fix = ("flocker-zfs never destroys the peer's copy by itself. If that copy is "
           "not needed, destroy it on the peer (`flocker-zfs destroy --force ID`), "
           "then push again.")


class ReplicaDiverged(FlockerZFSError):
    """
    The peer's copy has snapshots newer than the common base, so an
    incremental would need a destructive rollback there.
    """

    fix = ("Compare `flocker-zfs status` on both nodes; keep what you need from the "
           "peer's copy, destroy it there, then push again.")


class PeerIsOwner(FlockerZFSError):
    """
    The peer holds a writable, owned copy: pushing over it would lose its writes.
    """

    fix = ("Only the owner pushes. If both nodes think they own the dataset, stop "
           "writers on one of them and hand it off explicitly.")


class HandoffInDoubt(FlockerZFSError):
    """
    The handoff's outcome is unknown (the peer did not answer ``acquire``).
    This node stays read-only; :meth:`Replicator.recover` settles it.
    """

    fix = ("Nothing is lost and no node is writable twice. Once the peer is reachable, "
           "run the handoff again (or let the agent recover): it asks the peer "
           "whether it became the owner.")


# -- the peer server's refusals -------------------------------------------------

class LocallyOwned(FlockerZFSError):
    """This node's copy is or may be the owner's (writable, or recorded as owned here)."""
    fix = ("Only the owner pushes and it never pushes to another owner. If both nodes "
           "think they own the dataset, compare `flocker-zfs status` on both and hand "
           "it off explicitly.")


class HandoffInProgress(FlockerZFSError):
    """This node is handing the dataset off (``flocker:handoff`` is set here)."""
    fix = "Let the handoff finish (or recover it) on this node, then retry."


class StaleGeneration(FlockerZFSError):
    """The request's ownership generation is older than what this node knows."""
    fix = ("Another handoff won. Check `flocker-zfs status` on both nodes; the node "
           "with the highest generation is the owner.")


class SnapshotMismatch(FlockerZFSError):
    """This node's newest snapshot is not the one the request names."""
    fix = "Push the dataset again so this node holds the snapshot, then retry."


class ResumeStateExists(FlockerZFSError):
    """An interrupted resumable receive left partial state that blocks this request."""
    fix = ("Resume it (receive with BASE=resume from the resume token) or discard it "
           "with `abort-receive`, then retry.")


class NoResumeState(FlockerZFSError):
    """There is no interrupted receive to resume or abort."""
    fix = "Ask `state` again: send an incremental or full stream instead."


class ResumeNotSupported(FlockerZFSError):
    """This node's ZFS (zfs-fuse) has no resumable receives."""
    fix = "Re-send the stream from the last common snapshot instead."


class PeerServeFailed(FlockerZFSError):
    """peer-serve failed unexpectedly (a bug); the traceback is in the server's log."""
    fix = "See the peer's flocker-zfs log (eliot) for the traceback, and report it."


# -- streams -----------------------------------------------------------------


# -- peers and transport -----------------------------------------------------

class TransportError(FlockerZFSError):
    """
    SSH to a peer failed (ssh exited 255).

    :ivar str peer: the peer's address.
    :ivar bytes stderr: what ssh said.
    """

    cause = "ssh to the peer failed"
    fix = ("Check SSH between the nodes by hand: `ssh -i <identity> -o "
           "UserKnownHostsFile=<known_hosts> -p <port> root@<peer>` must reach "
           "`flocker-zfs peer-serve` (see docs/peers.rst).")

    def __init__(self, peer, stderr=b"", argv=()):
        FlockerZFSError.__init__(self, peer, stderr)
        self.peer = peer
        self.stderr = stderr
        self.argv = tuple(argv)

    def summary(self):
        lines = [line.strip() for line in self.stderr.decode("utf-8", "replace").splitlines()
                 if line.strip() and not line.startswith("@@@")]
        # The line that says why (ssh often ends with a generic one).
        telling = [line for line in lines if _SSH_TELLING.search(line)]
        chosen = telling[0] if telling else (lines[-1] if lines else "")
        detail = (" (%s)" % (chosen,)) if chosen else ""
        return "%s: %s%s" % (self.cause, self.peer, detail)


_SSH_TELLING = re.compile(r"host key is known|IDENTIFICATION HAS CHANGED|Connection refused|"
                          r"No route|Could not resolve|timed out|Permission denied|"
                          r"Timeout|unreachable|not known", re.IGNORECASE)


class PeerUnreachable(TransportError):
    """The peer did not answer (refused, no route, unknown name, timeout)."""
    cause = "peer unreachable"
    fix = ("Check the peer's address and port, that its sshd runs and that the "
           "firewall allows TCP to it.")


class HostKeyMismatch(TransportError):
    """The peer's host key is unknown or differs from the pinned one."""
    cause = "the peer's SSH host key is not the one in known_hosts"
    fix = ("If the peer was reinstalled, verify its new key out of band and replace its "
           "line in the known_hosts file; otherwise treat this as an attack. "
           "flocker-zfs never accepts an unknown key by itself.")


class UnknownHostKey(HostKeyMismatch):
    """The peer's host key is not in known_hosts at all (never recorded)."""
    cause = "the peer's SSH host key is not in known_hosts"
    fix = ("Record it after checking its fingerprint out of band: `ssh-keyscan -p PORT HOST` "
           "on a trusted path, compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` "
           "on the peer, then append the line to the known_hosts file. flocker-zfs never "
           "accepts an unknown key by itself.")


class PeerPermissionDenied(TransportError):
    """The peer refused our key."""
    cause = "the peer refused our SSH key"
    fix = ("Install this node's public key in the peer's authorized_keys with the "
           "flocker-zfs peer-serve forced command (see docs/peers.rst), and check the "
           "identity file's permissions (0600).")


class TransportTimeout(TransportError):
    """The connection stalled (no answer to keep-alives)."""
    cause = "the connection to the peer stalled"
    fix = "Check the network between the nodes; the transfer can be retried."


#: ssh's own messages (exit status 255), checked in order.
SSH_ERRORS = (
    (HostKeyMismatch, re.compile(rb"REMOTE HOST IDENTIFICATION HAS CHANGED")),
    (UnknownHostKey, re.compile(rb"No [A-Z0-9-]*\s*host key is known for")),
    (HostKeyMismatch, re.compile(rb"Host key verification failed")),
    (PeerPermissionDenied, re.compile(rb"Permission denied")),
    (TransportTimeout, re.compile(rb"Timeout, server .* not responding|timed out waiting")),
    (PeerUnreachable, re.compile(rb"Connection refused|No route to host|"
                                 rb"Could not resolve hostname|Connection timed out|"
                                 rb"Network is unreachable|Name or service not known|"
                                 rb"Connection closed by|Connection reset")),
)


def transport_error_for(peer, stderr, argv=()):
    """
    :return: the :class:`TransportError` for ssh's ``stderr`` (not raised).
    """
    for error_type, pattern in SSH_ERRORS:
        if pattern.search(stderr):
            return error_type(peer, stderr, argv)
    return TransportError(peer, stderr, argv)


class TransferFailed(FlockerZFSError):
    """
    A ``zfs send | ssh peer receive`` pipeline failed.

    :ivar str side: ``"sender"`` (local ``zfs send``), ``"transport"``
        (ssh), or ``"receiver"`` (the peer's ``zfs receive`` or its checks).
    :ivar error: the error of that side.
    :ivar others: errors of the other sides (often consequences).
    """

    def __init__(self, side, error, others=()):
        FlockerZFSError.__init__(self, side, error)
        self.side = side
        self.error = error
        self.others = tuple(others)

    def summary(self):
        return "transfer failed on the %s side: %s" % (
            self.side, getattr(self.error, "summary", lambda: str(self.error))())

    @property
    def fix(self):
        return getattr(self.error, "fix", "")


# (error type, pattern on stderr).  Checked in order after the operation's
# own patterns; the first match wins.  Wording from zfs-fuse 0.7 and
# OpenZFS 2.x (libzfs_util.c zfs_standard_error / zpool_standard_error).
COMMON = (
    (ZFSNotRunning, re.compile(rb"make sure that the zfs-fuse daemon is running"
                               rb"|failed to initialize ZFS library"
                               rb"|The ZFS modules are not loaded")),
    (PoolNotFound, re.compile(rb"no such pool")),
    (HasDependentClones, re.compile(rb"has dependent clones|filesystem has dependent clones")),
    (QuotaTooSmall, re.compile(rb"size is less than current used or reserved space")),
    (DatasetNotFound, re.compile(rb"dataset does not exist|could not find any snapshots")),
    (DatasetExists, re.compile(rb"dataset already exists")),
    (DatasetBusy, re.compile(rb"dataset is busy|pool or dataset is busy|device busy|"
                             rb"target is busy|umount: .* busy")),
    (OutOfSpace, re.compile(rb"out of space|disk quota exceeded|No space left")),
    (PermissionDenied, re.compile(rb"permission denied|Permission denied|"
                                  rb"must be superuser|Operation not permitted")),
)

_SUBJECT = re.compile(rb"^cannot [a-z ]+ '([^'\n]*)'", re.MULTILINE)


def subject_of(stderr):
    """
    :param bytes stderr: a zfs error message.
    :return: the dataset/pool name the message is about (``cannot open 'p/x'``), or ``None``.
    """
    match = _SUBJECT.search(stderr)
    if match is None:
        return None
    return match.group(1).decode("utf-8", "replace")


def error_for(argv, status, stderr, specific=(), subject=None):
    """
    Choose the typed error for a failed command.

    :param argv: the command.
    :param int status: its exit status.
    :param bytes stderr: its stderr.
    :param specific: ``(error type, compiled bytes pattern)`` pairs for this
        operation, checked before :data:`COMMON`.
    :param subject: what the command was about; taken from stderr if ``None``.
    :return: a :class:`ZFSError` instance (not raised).
    """
    if subject is None:
        subject = subject_of(stderr)
    for error_type, pattern in tuple(specific) + COMMON:
        if pattern.search(stderr):
            return error_type(argv=argv, status=status, stderr=stderr, subject=subject)
    return CommandFailed(argv=argv, status=status, stderr=stderr, subject=subject)


def _extract(error):
    fields = {
        "argv": list(error.argv),
        "status": error.status,
        "stderr": error.stderr.decode("utf-8", "replace"),
    }
    duration = getattr(error, "duration", None)
    if duration is not None:
        fields["duration"] = round(duration, 6)
    return fields


register_exception_extractor(ZFSError, _extract)
