"""
Differential test: random sequences of backend operations (hypothesis) run on
the fake ZFS and on real ZFS must give the same observable results and the
same error types.

Real ZFS is driven through :class:`BlockingRunner`, a test-only ``IRunner``
that runs each command to completion with ``subprocess`` and returns an
already-fired ``Deferred``.  That keeps the backend's own code path intact
while letting hypothesis call it synchronously.
"""

import os
import subprocess
import uuid

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from .._backend import ZFSBackend
from ..errors import FlockerZFSError, ZFSNotInstalled, error_for
from ..interfaces import IRunner
from ..testing import FakeZFS
from . import realzfs

MiB = 1024 * 1024

#: Symbolic dataset ids and snapshot names an operation sequence draws from.
IDS = ("a", "b", "c")
SNAPSHOTS = ("s1", "s2")
SIZES = (None, 16 * MiB, 64 * MiB)


@implementer(IRunner)
class BlockingRunner(object):
    """
    Runs commands with ``subprocess``, synchronously.  For tests only: it
    blocks, which the real runner never does.
    """

    def __init__(self, environ=None):
        self._env = dict(os.environ if environ is None else environ, LC_ALL="C", LANG="C")
        self._env["PATH"] = self._env.get("PATH", "") + ":/usr/sbin:/sbin"

    def run(self, argv, errors=(), timeout=None):
        try:
            result = subprocess.run(list(argv), capture_output=True, env=self._env,
                                    timeout=timeout or 120)
        except FileNotFoundError:
            return fail(ZFSNotInstalled(argv=argv, status=127, stderr=b"not found"))
        if result.returncode != 0:
            return fail(error_for(argv, result.returncode, result.stderr, errors))
        return succeed(result.stdout)


operations = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(IDS), st.sampled_from(SIZES)),
    st.tuples(st.just("destroy"), st.sampled_from(IDS)),
    st.tuples(st.just("resize"), st.sampled_from(IDS), st.sampled_from(SIZES)),
    st.tuples(st.just("snapshot"), st.sampled_from(IDS), st.sampled_from(SNAPSHOTS)),
    st.tuples(st.just("clone"), st.sampled_from(IDS), st.sampled_from(SNAPSHOTS),
              st.sampled_from(IDS)),
    st.tuples(st.just("write"), st.sampled_from(IDS), st.binary(max_size=64)),
    st.tuples(st.just("get"), st.sampled_from(IDS)),
)


class _Node(object):
    """
    One backend (fake or real) plus the mapping from symbolic names to the
    UUIDs used in this example.
    """

    def __init__(self, backend, clock, ids):
        self.backend = backend
        self.clock = clock
        self.ids = ids

    def _wait(self, d):
        # Only the busy-retry path waits on the clock.
        for _ in range(10):
            if d.called:
                break
            self.clock.advance(5)
        results = []
        d.addBoth(results.append)
        [result] = results
        if hasattr(result, "value"):
            if isinstance(result.value, FlockerZFSError):
                return ("error", type(result.value).__name__)
            result.raiseException()
        return ("ok", result)

    def apply(self, op):
        """
        :return: an observable outcome of ``op``, comparable across nodes.
        """
        kind, key = op[0], self.ids[op[1]]
        if kind == "create":
            return self._shape(self._wait(self.backend.create(key, op[2])))
        if kind == "destroy":
            return self._wait(self.backend.destroy(key))
        if kind == "resize":
            return self._shape(self._wait(self.backend.resize(key, op[2])))
        if kind == "snapshot":
            outcome = self._wait(self.backend.snapshot(key, op[2]))
            return outcome if outcome[0] == "error" else ("ok", outcome[1].name)
        if kind == "clone":
            return self._shape(self._wait(
                self.backend.clone(key, op[2], self.ids[op[3]])))
        if kind == "write":
            path = self.backend.path(key)
            if not path.isdir():
                return ("no directory",)
            try:
                path.child("f").setContent(op[2])
            except OSError as error:
                return ("os error", error.errno)
            return ("ok",)
        return self._shape(self._wait(self.backend.get(key)))

    def _shape(self, outcome):
        if outcome[0] == "error":
            return outcome
        return ("ok", self._describe(outcome[1]))

    def _describe(self, dataset):
        names = {v: k for k, v in self.ids.items()}
        origin = dataset.origin
        if origin is not None:
            origin_id, _, snap = origin.partition("@")
            origin = (names.get(origin_id, "?"), snap)
        content = None
        path = self.backend.path(dataset.dataset_id).child("f")
        if dataset.mounted and path.exists():
            content = path.getContent()
        return (names[dataset.dataset_id], dataset.writable, dataset.maximum_size,
                dataset.mounted, origin, tuple(s.name for s in dataset.snapshots), content)

    def final(self):
        outcome = self._wait(self.backend.discover())
        mine = set(self.ids.values())
        return sorted(self._describe(d) for k, d in outcome[1].datasets.items() if k in mine)


def _ids():
    return {name: str(uuid.uuid4()) for name in IDS}


class DifferentialTests(SynchronousTestCase):
    """
    The fake ZFS (zfs-fuse profile) and real zfs-fuse agree on random
    operation sequences.
    """

    def setUp(self):
        realzfs.require_real_zfs()
        self.mount_root = realzfs.make_mount_root(self)
        self.pool = realzfs.make_pool(self, size=512 * MiB)
        self.node_uuid = str(uuid.uuid4())
        self.fake_root = os.path.abspath(self.mktemp())
        self.fake = FakeZFS(profile="zfs-fuse")
        self.fake.add_pool(self.pool)

    @settings(max_examples=int(os.environ.get("FLOCKER_ZFS_DIFFERENTIAL_EXAMPLES", "12")),
              deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(operations, min_size=1, max_size=12))
    def test_same_outcomes(self, sequence):
        """
        Every operation has the same outcome (value or error type) on both,
        and discovery agrees at the end.
        """
        ids = _ids()
        clock = Clock()
        real = _Node(ZFSBackend(clock, self.pool, self.mount_root, self.node_uuid,
                                runner=BlockingRunner()), clock, ids)
        fake_clock = Clock()
        fake = _Node(ZFSBackend(fake_clock, self.pool, self.fake_root, self.node_uuid,
                                runner=self.fake), fake_clock, ids)
        for op in sequence:
            real_outcome = real.apply(op)
            fake_outcome = fake.apply(op)
            self.assertEqual(fake_outcome, real_outcome, "after %r in %r" % (op, sequence))
        self.assertEqual(fake.final(), real.final(), sequence)
