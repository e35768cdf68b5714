"""
Tests for :mod:`flocker_zfs._plugin`.
"""

import json
import os
import shutil
import sys
import types
import uuid
from importlib.metadata import EntryPoint

from pyrsistent import InvariantException, pmap
from twisted.internet.defer import Deferred, fail
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from .._backend import ZFSBackend
from .._config import AgentConfig, ZFSSettings, parse_config, zfs_settings
from .._plugin import (
    ENTRY_POINT_GROUP, FLOCKER_BACKEND, BackendDescription, BackendLoadError, UnknownBackend,
    backend_from_config, find_backend, installed_entry_points, is_module_path, known_backends,
    lock_dir_for, unchecked_settings, zfs_backend, zfs_backend_factory)
from .._dslock import DEFAULT_LOCK_DIR
from ..errors import ConfigError, InvalidName, PoolNotFound
from ..interfaces import IStorageBackend
from ..testing import FakeZFS
from . import plugin_example, realzfs

EXAMPLE_MODULE = "flocker_zfs.test.plugin_example"
DATASET = "6f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f"


def entry_points(*points):
    """
    :return: an ``entry_points`` lookup answering ``points`` (name, value)
        for the backends group, and nothing for any other group.
    """
    def lookup(group):
        if group != ENTRY_POINT_GROUP:
            return []
        return [EntryPoint(name=name, value=value, group=group) for name, value in points]
    return lookup


def no_import(name):
    raise AssertionError("%s must not be imported" % (name,))


def importing(module=None, error=None):
    """
    :return: an ``import_module`` that returns ``module`` or raises ``error``.
    """
    def import_module(name):
        if error is not None:
            raise error
        return module
    return import_module


class BackendDescriptionTests(SynchronousTestCase):
    """
    Tests for :class:`BackendDescription` and ``FLOCKER_BACKEND``.
    """

    def test_zfs(self):
        """
        The zfs description: a p2p backend that needs the reactor and no
        cluster id, requires no key and checks its section with
        ``zfs_settings``.
        """
        self.assertEqual(
            (FLOCKER_BACKEND.name, FLOCKER_BACKEND.deployer_type, FLOCKER_BACKEND.needs_reactor,
             FLOCKER_BACKEND.needs_cluster_id, set(FLOCKER_BACKEND.required_config),
             FLOCKER_BACKEND.settings, FLOCKER_BACKEND.factory),
            ("zfs", "p2p", True, False, set(), zfs_settings, zfs_backend))

    def test_defaults(self):
        """
        Only the name and the factory are needed; the section then reaches
        the factory as a ``pmap``.
        """
        description = BackendDescription(name="x", factory=dict)
        self.assertEqual(
            (description.needs_reactor, description.needs_cluster_id,
             set(description.required_config), description.deployer_type,
             description.settings),
            (True, False, set(), "p2p", unchecked_settings))
        self.assertEqual(description.settings({"a": [1]}, "f"), pmap({"a": [1]}))

    def test_invariants(self):
        """
        An empty name, a factory or settings hook that cannot be called, and
        a required key that is not a string are refused.
        """
        self.assertRaises(InvariantException, BackendDescription, name="", factory=dict)
        self.assertRaises(InvariantException, BackendDescription, name="x", factory=3)
        self.assertRaises(InvariantException, BackendDescription, name="x", factory=dict,
                          settings="no")
        self.assertRaises(TypeError, BackendDescription, name="x", factory=dict,
                          required_config={1})

    def test_entry_point(self):
        """
        The installed ``flocker.backends`` entry point ``zfs`` loads it.
        """
        found = [point for point in installed_entry_points() if point.name == "zfs"]
        if not found:
            self.skipTest("flocker-zfs is not installed (no entry points)")
        self.assertIs(found[0].load(), FLOCKER_BACKEND)


class ZFSBackendFactoryTests(SynchronousTestCase):
    """
    Tests for the keyword form :func:`zfs_backend_factory`, kept for
    existing callers.
    """

    def test_factory(self):
        """
        It builds an ``IStorageBackend`` from the section's keys, and
        creates the node identity.
        """
        base = os.path.abspath(self.mktemp())
        fake = FakeZFS()
        backend = zfs_backend_factory(
            MemoryReactorClock(), pool="tank", mount_root=base + "/mnt",
            node_file=base + "/node.json", ssh_port=2222, runner=fake)
        self.assertTrue(verifyObject(IStorageBackend, backend))
        self.assertEqual((backend.pool, backend.mount_root.path), ("tank", base + "/mnt"))
        with open(base + "/node.json") as handle:
            self.assertEqual(json.load(handle)["uuid"], backend.node_uuid)

    def test_unknown_key(self):
        """
        An unknown key is a ``ConfigError`` naming it and the known keys.
        """
        with self.assertRaises(ConfigError) as caught:
            zfs_backend_factory(MemoryReactorClock(), sshport=22)
        self.assertIn("dataset.sshport (did you mean ssh_port?)", str(caught.exception))
        self.assertIn("mount_root", str(caught.exception))

    def test_bad_pool(self):
        """
        A bad pool name is refused before anything is created.
        """
        base = os.path.abspath(self.mktemp())
        self.assertRaises(InvalidName, zfs_backend_factory, MemoryReactorClock(),
                          pool="-r", node_file=base + "/node.json")
        self.assertFalse(os.path.exists(base))


class FindBackendTests(SynchronousTestCase):
    """
    Tests for :func:`find_backend`: by name, entry point or module path.
    """

    def test_zfs(self):
        """
        ``zfs`` is the built-in backend; neither entry points nor modules are
        consulted.
        """
        def refuse(group):
            raise AssertionError("entry points consulted")
        self.assertIs(find_backend("zfs", entry_points=refuse, import_module=no_import),
                      FLOCKER_BACKEND)

    def test_entry_point(self):
        """
        Another name is looked up in the ``flocker.backends`` entry points.
        """
        lookup = entry_points(("example", EXAMPLE_MODULE + ":FLOCKER_BACKEND"),
                              ("plain", EXAMPLE_MODULE + ":PLAIN_BACKEND"))
        self.assertIs(find_backend("example", lookup, no_import),
                      plugin_example.FLOCKER_BACKEND)
        self.assertIs(find_backend("plain", lookup, no_import), plugin_example.PLAIN_BACKEND)

    def test_entry_point_before_module(self):
        """
        An entry point whose name looks like a module path wins over importing it.
        """
        lookup = entry_points(("acme.storage", EXAMPLE_MODULE + ":PLAIN_BACKEND"))
        self.assertIs(find_backend("acme.storage", lookup, no_import),
                      plugin_example.PLAIN_BACKEND)

    def test_entry_point_repeated(self):
        """
        The same entry point listed twice (a package seen twice on the path)
        is fine.
        """
        value = EXAMPLE_MODULE + ":PLAIN_BACKEND"
        self.assertIs(find_backend("plain", entry_points(("plain", value), ("plain", value))),
                      plugin_example.PLAIN_BACKEND)

    def test_entry_point_ambiguous(self):
        """
        Two packages giving one name different backends is an error naming both.
        """
        lookup = entry_points(("plain", EXAMPLE_MODULE + ":PLAIN_BACKEND"),
                              ("plain", EXAMPLE_MODULE + ":FLOCKER_BACKEND"))
        with self.assertRaises(BackendLoadError) as caught:
            find_backend("plain", lookup)
        self.assertIn("several 'flocker.backends' entry points", str(caught.exception))
        self.assertIn(EXAMPLE_MODULE + ":PLAIN_BACKEND", str(caught.exception))
        self.assertIn(EXAMPLE_MODULE + ":FLOCKER_BACKEND", str(caught.exception))

    def test_entry_point_broken(self):
        """
        An entry point that fails to load names itself and the error.
        """
        with self.assertRaises(BackendLoadError) as caught:
            find_backend("gone", entry_points(("gone", "flocker_zfs_no_such_pkg:B")))
        message = str(caught.exception)
        self.assertIn("'flocker.backends' entry point gone = flocker_zfs_no_such_pkg:B", message)
        self.assertIn("ModuleNotFoundError", message)

    def test_entry_point_wrong_type(self):
        """
        An entry point that is not a ``BackendDescription`` says what it is.
        """
        with self.assertRaises(BackendLoadError) as caught:
            find_backend("odd", entry_points(("odd", EXAMPLE_MODULE + ":ExampleBackend")))
        self.assertIn("is type, not a flocker_zfs BackendDescription", str(caught.exception))

    def test_module(self):
        """
        A dotted module path is imported; its ``FLOCKER_BACKEND`` is the backend.
        """
        self.assertIs(find_backend(EXAMPLE_MODULE, entry_points()),
                      plugin_example.FLOCKER_BACKEND)

    def test_module_missing(self):
        """
        A module path naming no module (or no package) is an unknown backend,
        listing the known ones.
        """
        lookup = entry_points(("example", EXAMPLE_MODULE + ":FLOCKER_BACKEND"))
        for name in ["flocker_zfs.test.no_such_plugin", "flocker_zfs_no_such_pkg.backend"]:
            with self.assertRaises(UnknownBackend) as caught:
                find_backend(name, lookup)
            message = str(caught.exception)
            self.assertIn("unknown backend %r" % (name,), message)
            self.assertIn("there is no module named %s" % (name,), message)
            self.assertIn("known backends: zfs, example", message)
            self.assertIn("dotted module path whose FLOCKER_BACKEND attribute", message)

    def test_module_dependency_missing(self):
        """
        A module whose own import of something else fails is a load error,
        not an unknown backend.
        """
        error = ModuleNotFoundError("No module named 'somedep'", name="somedep")
        with self.assertRaises(BackendLoadError) as caught:
            find_backend("acme.storage", entry_points(), importing(error=error))
        self.assertIn("importing the backend module acme.storage failed: "
                      "ModuleNotFoundError: No module named 'somedep'", str(caught.exception))

    def test_module_import_raises(self):
        """
        A module that raises on import names the exception.
        """
        with self.assertRaises(BackendLoadError) as caught:
            find_backend("acme.storage", entry_points(),
                         importing(error=RuntimeError("x" * 1000)))
        message = str(caught.exception)
        self.assertIn("importing the backend module acme.storage failed: RuntimeError: xxx",
                      message)
        self.assertLess(len(message), 400)

    def test_module_import_exits(self):
        """
        A module whose import calls ``sys.exit`` is a load error saying so,
        not the end of the process with that status and no message.
        """
        for code, shown in [(3, "sys.exit(3)"), ("bye", "sys.exit('bye')"),
                            (None, "sys.exit()")]:
            with self.assertRaises(BackendLoadError) as caught:
                find_backend("acme.storage", entry_points(),
                             importing(error=SystemExit(code)))
            self.assertIn("importing the backend module acme.storage failed: it called "
                          + shown, str(caught.exception))

    def test_entry_point_exits(self):
        """
        An entry point whose loading calls ``sys.exit`` is a load error too.
        """
        class Exiting(object):
            name, value = "bye", "acme.storage:B"

            def load(self):
                raise SystemExit(3)
        with self.assertRaises(BackendLoadError) as caught:
            find_backend("bye", lambda group: [Exiting()])
        self.assertIn("loading the 'flocker.backends' entry point bye = acme.storage:B "
                      "failed: it called sys.exit(3)", str(caught.exception))

    def test_real_module_exits(self):
        """
        A real backend module calling ``sys.exit(3)`` at import makes the
        configuration fail with a load error naming it.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(base, "exitingpkg"))
        for name, text in [("__init__.py", ""), ("storage.py", "import sys\nsys.exit(3)\n")]:
            with open(os.path.join(base, "exitingpkg", name), "w") as handle:
                handle.write(text)
        sys.path.insert(0, base)
        self.addCleanup(sys.path.remove, base)
        self.addCleanup(sys.modules.pop, "exitingpkg", None)
        with self.assertRaises(BackendLoadError) as caught:
            parse_config("dataset: {backend: exitingpkg.storage}")
        self.assertIn("exitingpkg.storage failed: it called sys.exit(3)", str(caught.exception))

    def test_module_import_interrupted(self):
        """
        ``KeyboardInterrupt`` during a backend import is not turned into a
        load error: the user's Ctrl-C still stops the process.
        """
        self.assertRaises(KeyboardInterrupt, find_backend, "acme.storage", entry_points(),
                          importing(error=KeyboardInterrupt()))

    def test_module_without_attribute(self):
        """
        A module without ``FLOCKER_BACKEND`` says so.
        """
        with self.assertRaises(BackendLoadError) as caught:
            find_backend("flocker_zfs.names", entry_points())
        self.assertIn("flocker_zfs.names has no FLOCKER_BACKEND attribute",
                      str(caught.exception))

    def test_module_wrong_type(self):
        """
        A ``FLOCKER_BACKEND`` that is not a ``BackendDescription`` says what it is.
        """
        module = types.ModuleType("acme.storage")
        module.FLOCKER_BACKEND = {"name": "acme"}
        with self.assertRaises(BackendLoadError) as caught:
            find_backend("acme.storage", entry_points(), importing(module))
        self.assertIn("acme.storage.FLOCKER_BACKEND is dict, not a flocker_zfs "
                      "BackendDescription", str(caught.exception))

    def test_bare_name_not_imported(self):
        """
        A name without a dot is never imported; the closest known name is
        suggested.
        """
        with self.assertRaises(UnknownBackend) as caught:
            find_backend("zsf", entry_points(), no_import)
        self.assertIn("unknown backend 'zsf' (did you mean zfs?); known backends: zfs",
                      str(caught.exception))

    def test_not_module_paths(self):
        """
        Names that are not dotted Python identifiers are never imported.
        """
        for name in ["", "a..b", ".a.b", "a.b.", "a.b-c", "a.class", "a b.c", "1a.b", "os"]:
            self.assertFalse(is_module_path(name), name)
            self.assertRaises(UnknownBackend, find_backend, name, entry_points(), no_import)
        self.assertTrue(is_module_path("acme.storage_2.backend"))

    def test_known_backends(self):
        """
        ``zfs`` comes first, then the entry points' names sorted, once each.
        """
        lookup = entry_points(("zeta", "a:B"), ("alpha", "c:D"), ("zfs", "e:F"),
                              ("alpha", "c:D"))
        self.assertEqual(known_backends(lookup), ["zfs", "alpha", "zeta"])

    def test_installed(self):
        """
        Without a lookup, the installed entry points are used.
        """
        self.assertEqual(known_backends()[0], "zfs")
        self.assertIs(find_backend("zfs"), FLOCKER_BACKEND)


class FlakyBackend(object):
    """
    A backend whose ``start()`` the test controls.
    """

    def __init__(self, settings, start):
        self.settings = settings
        self._start = start

    def start(self):
        return self._start()


def _config(description, settings=None, backend=None):
    return AgentConfig(source="agent.yml", backend=backend or description.name,
                       description=description,
                       settings=pmap() if settings is None else settings)


class BackendFromConfigTests(SynchronousTestCase):
    """
    Tests for :func:`backend_from_config`.
    """

    def zfs_config(self, base, pool="tank"):
        return parse_config(
            "version: 1\n"
            "dataset:\n"
            "  backend: zfs\n"
            "  pool: %s\n"
            "  mount_root: %s/mnt\n"
            "  node_file: %s/node.json\n" % (pool, base, base), source=base + "/agent.yml")

    def test_zfs(self):
        """
        The zfs backend is built from the settings and started: its
        implementation is detected, the mount root exists and discovery
        works. The node identity is created now, not when the config was read.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        config = self.zfs_config(base)
        self.assertEqual(os.listdir(base), [])
        fake = FakeZFS()
        fake.add_pool("tank")
        backend = self.successResultOf(
            backend_from_config(MemoryReactorClock(), config, runner=fake))
        self.assertIsInstance(backend, ZFSBackend)
        self.assertTrue(verifyObject(IStorageBackend, backend))
        self.assertIsNotNone(backend.capabilities)
        self.assertEqual((backend.pool, backend.mount_root.path), ("tank", base + "/mnt"))
        self.assertTrue(os.path.isdir(base + "/mnt"))
        with open(base + "/node.json") as handle:
            self.assertEqual(json.load(handle)["uuid"], backend.node_uuid)
        self.assertEqual(self.successResultOf(backend.discover()).datasets, pmap())
        self.successResultOf(backend.create(DATASET))
        state = self.successResultOf(backend.discover())
        self.assertEqual(list(state.datasets), [DATASET])
        self.assertEqual(state.datasets[DATASET].owner, backend.node_uuid)

    def test_zfs_keeps_identity(self):
        """
        An existing node identity is used, not replaced.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        node = str(uuid.uuid4())
        with open(base + "/node.json", "w") as handle:
            json.dump({"uuid": node}, handle)
        fake = FakeZFS()
        fake.add_pool("tank")
        backend = self.successResultOf(
            backend_from_config(MemoryReactorClock(), self.zfs_config(base), runner=fake))
        self.assertEqual(backend.node_uuid, node)

    def test_zfs_start_fails(self):
        """
        A pool that does not exist fails the ``Deferred`` (start ran).
        """
        base = os.path.abspath(self.mktemp())
        fake = FakeZFS()
        failure = self.failureResultOf(
            backend_from_config(MemoryReactorClock(), self.zfs_config(base, "absent"),
                                runner=fake), PoolNotFound)
        self.assertIn("absent", str(failure.value))

    def test_zfs_bad_identity(self):
        """
        A corrupt node identity fails the ``Deferred``; nothing is raised.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        with open(base + "/node.json", "w") as handle:
            handle.write("not json")
        d = backend_from_config(MemoryReactorClock(), self.zfs_config(base), runner=FakeZFS())
        failure = self.failureResultOf(d, ConfigError)
        self.assertIn(base + "/node.json", str(failure.value))

    def test_reactor_cluster_id_and_runner(self):
        """
        A backend that needs them gets the reactor, the settings, the
        cluster id and (when given) the runner, and is started.
        """
        config = parse_config("dataset: {backend: %s, greeting: hi}" % (EXAMPLE_MODULE,))
        reactor = MemoryReactorClock()
        backend = self.successResultOf(backend_from_config(reactor, config, cluster_id="c1"))
        self.assertEqual(
            (backend.reactor, backend.settings, backend.cluster_id, backend.runner,
             backend.started),
            (reactor, pmap({"greeting": "hi"}), "c1", None, True))
        runner = object()
        backend = self.successResultOf(
            backend_from_config(reactor, config, cluster_id="c1", runner=runner))
        self.assertIs(backend.runner, runner)

    def test_cluster_id_missing(self):
        """
        A backend that needs the cluster id fails without one, naming the
        file and the backend.
        """
        config = parse_config("dataset: {backend: %s, greeting: hi}" % (EXAMPLE_MODULE,),
                              source="/etc/flocker/agent.yml")
        failure = self.failureResultOf(backend_from_config(MemoryReactorClock(), config),
                                       ConfigError)
        self.assertIn("/etc/flocker/agent.yml: backend %r needs the cluster id"
                      % (EXAMPLE_MODULE,), str(failure.value))

    def test_no_reactor_no_start(self):
        """
        A backend that needs no reactor gets the settings alone; without
        ``start()`` it is returned as built.
        """
        settings = pmap({"a": 1})
        backend = self.successResultOf(backend_from_config(
            MemoryReactorClock(), _config(plugin_example.PLAIN_BACKEND, settings),
            cluster_id="ignored"))
        self.assertIsInstance(backend, plugin_example.PlainBackend)
        self.assertIs(backend.settings, settings)

    def test_waits_for_start(self):
        """
        The result fires once ``start()``'s ``Deferred`` has.
        """
        started = Deferred()
        description = BackendDescription(
            name="flaky", needs_reactor=False,
            factory=lambda settings: FlakyBackend(settings, lambda: started))
        d = backend_from_config(MemoryReactorClock(), _config(description))
        self.assertNoResult(d)
        started.callback(None)
        self.assertIsInstance(self.successResultOf(d), FlakyBackend)

    def test_start_fails(self):
        """
        ``start()`` raising, or failing its ``Deferred``, fails the result.
        """
        def raising():
            raise ValueError("no pool")
        for start in [raising, lambda: fail(ValueError("no pool"))]:
            description = BackendDescription(
                name="flaky", needs_reactor=False,
                factory=lambda settings, start=start: FlakyBackend(settings, start))
            self.failureResultOf(backend_from_config(None, _config(description)), ValueError)

    def test_factory_fails(self):
        """
        A factory that raises fails the result instead of raising.
        """
        def factory(reactor, settings):
            raise InvalidName("bad")
        description = BackendDescription(name="bad", factory=factory)
        self.failureResultOf(backend_from_config(None, _config(description)), InvalidName)


class LockDirTests(SynchronousTestCase):
    """
    The zfs backend shares peer-serve's per-dataset lock directory.
    """

    def test_real_processes(self):
        """
        With real processes the backend uses the settings' ``lock_dir``,
        else peer-serve's default.
        """
        self.assertEqual(lock_dir_for(ZFSSettings()), DEFAULT_LOCK_DIR)
        self.assertEqual(lock_dir_for(types.SimpleNamespace(lock_dir="/run/x")), "/run/x")

    def test_injected_runner(self):
        """
        With an injected runner (a fake pool) the default directory is not
        used, a configured one is.
        """
        fake = FakeZFS()
        self.assertIsNone(lock_dir_for(ZFSSettings(), fake))
        self.assertIsNone(lock_dir_for(types.SimpleNamespace(lock_dir=DEFAULT_LOCK_DIR), fake))
        self.assertEqual(lock_dir_for(types.SimpleNamespace(lock_dir="/run/x"), fake), "/run/x")

    def test_backend(self):
        """
        The factory passes it to the backend.
        """
        base = os.path.abspath(self.mktemp())
        settings = types.SimpleNamespace(pool="tank", mount_root=base + "/mnt",
                                         node_file=base + "/node.json", lock_dir=base + "/l")
        self.assertEqual(zfs_backend(MemoryReactorClock(), settings, runner=FakeZFS()).lock_dir,
                         base + "/l")
        self.assertEqual(zfs_backend(MemoryReactorClock(), ZFSSettings(
            node_file=base + "/node.json")).lock_dir, DEFAULT_LOCK_DIR)


class ZFSSettingsHookTests(SynchronousTestCase):
    """
    The zfs description's hook is the config module's.
    """

    def test_hook(self):
        """
        ``FLOCKER_BACKEND.settings`` gives ``ZFSSettings``.
        """
        self.assertEqual(FLOCKER_BACKEND.settings({"pool": "tank"}, "f"),
                         ZFSSettings(pool="tank"))


class RealBackendFromConfigTests(TestCase):
    """
    :func:`backend_from_config` on real ZFS (skipped without it, failing
    under ``CI=true``).
    """

    async def test_real(self):
        """
        A config naming a real pool gives a started backend that creates
        and discovers a dataset.
        """
        from twisted.internet import reactor
        realzfs.require_real_zfs()
        mount_root = realzfs.make_mount_root(self)
        pool = realzfs.make_pool(self)
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        config = parse_config(
            "dataset: {backend: zfs, pool: %s, mount_root: %s, node_file: %s/node.json}"
            % (pool, mount_root, base))
        backend = await backend_from_config(reactor, config)
        self.addCleanup(shutil.rmtree, os.path.join(DEFAULT_LOCK_DIR, pool), True)
        self.assertIsNotNone(backend.capabilities)
        self.assertEqual(backend.lock_dir, DEFAULT_LOCK_DIR)
        await backend.create(DATASET)
        state = await backend.discover()
        self.assertEqual(state.datasets[DATASET].owner, backend.node_uuid)
        self.assertTrue(os.path.isdir(os.path.join(mount_root, DATASET)))
