"""
Benchmark: how much the SSH transport costs a ``zfs send`` stream.

In one run, on one file-backed pool, it times receiving the same snapshot
(``--mib`` MiB of random data, 64 by default) three ways:

- ``raw``: ``zfs send P/src@b | zfs receive P/<new>``, a shell pipe;
- ``ssh``: ``SSHPeer.stream(["zfs", "send", "P/src@b"], "receive", ...)``
  into a private sshd on loopback whose forced command runs
  ``zfs receive P/<new>`` (a stand-in for ``peer-serve``), ssh's default
  cipher;
- ``ssh-aes-gcm``: the same with ``ciphers="aes128-gcm@openssh.com"``.

Each mode runs ``--runs`` times (5 by default) into a fresh dataset that is
destroyed afterwards; it prints the median time, MiB/s of the stream and the
ratio to ``raw``, and the byte count ``SSHPeer`` reported next to the stream's
real size.  ``ssh-connect`` times a ``hello`` call: the fixed cost of one
connection (key exchange, authentication, session) that every stream pays,
which dominates small streams.  There are no assertions: it measures.

Run as root, with ZFS answering (``bash scripts/setup`` starts zfs-fuse) and
openssh-server installed, from the repository root::

    /root/devvenv/bin/python benchmarks/stream_throughput.py [--mib 64] [--runs 5]

The pool, the sshd and their files are removed at the end.
"""

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, task  # noqa: E402

from flocker_zfs._sshpeer import SSHPeer  # noqa: E402
from flocker_zfs.test.realssh import make_sshd  # noqa: E402
from flocker_zfs.test.realzfs import WORK_DIR, make_pool, require_real_zfs  # noqa: E402

OWNER = "0a1b2c3d-4e5f-4b7c-9e8f-6f1c2b5e3d4a"

#: The forced command: receive into <pool>/<dataset id of the request>;
#: ``hello`` only answers (to time a connection alone).
_RECEIVE = """#!/bin/sh
set -e
set -- $SSH_ORIGINAL_COMMAND
if [ "$3" = hello ]; then echo '{"ok": true}'; exit 0; fi
%(zfs)s receive %(pool)s/"$4" >&2
echo '{"ok": true}'
"""


class _Cleanups(object):
    """
    The ``addCleanup`` the fixtures expect, run last-in first-out by :meth:`run`.
    """

    def __init__(self):
        self._calls = []

    def addCleanup(self, function, *args, **kwargs):
        self._calls.append((function, args, kwargs))

    def run(self):
        while self._calls:
            function, args, kwargs = self._calls.pop()
            try:
                function(*args, **kwargs)
            except Exception as error:
                print("clean-up %s failed: %s" % (function.__name__, error), file=sys.stderr)


def _zfs(zfs, *args):
    subprocess.run([zfs] + list(args), check=True, stdin=subprocess.DEVNULL)


def _source(cleanups, zfs, mib):
    """
    :return: ``(pool, snapshot, stream size in bytes)``.
    """
    pool = make_pool(cleanups, size=(2 * mib + 256) * 1024 * 1024)
    mountpoint = os.path.join(WORK_DIR, "bench-" + pool)
    os.makedirs(mountpoint)
    cleanups.addCleanup(os.rmdir, mountpoint)
    _zfs(zfs, "create", "-o", "mountpoint=" + mountpoint, pool + "/src")
    cleanups.addCleanup(_zfs, zfs, "unmount", pool + "/src")
    with open(os.path.join(mountpoint, "data"), "wb") as handle:
        for _ in range(mib):
            handle.write(os.urandom(1024 * 1024))
    _zfs(zfs, "snapshot", pool + "/src@b")
    size = subprocess.run("%s send %s | wc -c" % (zfs, shlex.quote(pool + "/src@b")),
                          shell=True, check=True, capture_output=True).stdout
    return pool, pool + "/src@b", int(size)


def _raw(zfs, pool, snapshot):
    target = "%s/%s" % (pool, uuid.uuid4())
    started = time.monotonic()
    subprocess.run("%s send %s | %s receive %s" % (zfs, shlex.quote(snapshot), zfs,
                                                   shlex.quote(target)),
                   shell=True, check=True)
    elapsed = time.monotonic() - started
    _zfs(zfs, "destroy", "-r", target)
    return elapsed, None


async def _ssh(peer, zfs, pool, snapshot):
    dataset = str(uuid.uuid4())
    started = time.monotonic()
    _, sent = await peer.stream([zfs, "send", snapshot], "receive", dataset, "full", "b",
                                "1", OWNER, 1)
    elapsed = time.monotonic() - started
    _zfs(zfs, "destroy", "-r", "%s/%s" % (pool, dataset))
    return elapsed, sent


async def main(reactor, options):
    zfs = require_real_zfs()[0]
    cleanups = _Cleanups()
    try:
        pool, snapshot, size = _source(cleanups, zfs, options.mib)
        sshd = make_sshd(cleanups)
        sshd.set_forced_command(sshd.write_script("receive.sh", _RECEIVE % {
            "zfs": zfs, "pool": pool}))
        modes = [
            ("raw", None),
            ("ssh", SSHPeer(reactor, sshd.config, sshd.host)),
            ("ssh-aes-gcm", SSHPeer(reactor, sshd.config.set(
                ciphers="aes128-gcm@openssh.com"), sshd.host)),
        ]
        connect = []
        for _ in range(options.runs):
            started = time.monotonic()
            await modes[1][1].call("hello")
            connect.append(time.monotonic() - started)
        results = {}
        for _ in range(options.runs):
            for name, peer in modes:    # interleaved, so drift hits every mode
                if peer is None:
                    result = _raw(zfs, pool, snapshot)
                else:
                    result = await _ssh(peer, zfs, pool, snapshot)
                results.setdefault(name, []).append(result)
        raw = statistics.median(t for t, _ in results["raw"])
        print("stream of %s: %d bytes (%.1f MiB of random data), %d runs, median:"
              % (snapshot, size, options.mib, options.runs))
        print("%-12s %9s %9s %8s %14s" % ("mode", "seconds", "MiB/s", "x raw", "bytes counted"))
        for name, _ in modes:
            seconds = statistics.median(t for t, _ in results[name])
            counted = [n for _, n in results[name] if n is not None]
            print("%-12s %9.3f %9.1f %8.2f %14s" % (
                name, seconds, size / seconds / 1048576, seconds / raw,
                counted[-1] if counted else "-"))
        print("%-12s %9.3f" % ("ssh-connect", statistics.median(connect)))
    finally:
        cleanups.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--mib", type=int, default=64, help="MiB of data (default 64)")
    parser.add_argument("--runs", type=int, default=5, help="runs per mode (default 5)")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
