# test-case-name: flocker_zfs.test.test_plugin
"""
The plugin contract between a host dataset agent and its storage backends.

A backend is described by a :class:`BackendDescription`. The ``backend:``
value of the agent's ``dataset:`` section picks one (:func:`find_backend`):

1. ``zfs`` is this library's own backend (:data:`FLOCKER_BACKEND`);
2. any other name is looked up in the ``flocker.backends`` entry point group
   of the installed packages;
3. a dotted module path (``backend: mypackage.storage``) is imported. Its
   ``FLOCKER_BACKEND`` attribute must be a :class:`BackendDescription`.

:func:`backend_from_config` turns a checked configuration into a started
backend.
"""

import difflib
import importlib
import importlib.metadata
import keyword

from pyrsistent import PClass, field, pmap, pset_field
from twisted.internet.defer import Deferred, maybeDeferred

from ._backend import ZFSBackend
from ._config import zfs_settings
from ._dslock import DEFAULT_LOCK_DIR
from .errors import ConfigError
from ._yamlsource import clip, shown
from .node import DEFAULT_NODE_FILE, load_node_uuid

#: The entry point group host agents search for backends.
ENTRY_POINT_GROUP = "flocker.backends"

#: The attribute a backend module defines for ``backend: <module path>``.
MODULE_ATTRIBUTE = "FLOCKER_BACKEND"


class UnknownBackend(ConfigError):
    """
    No backend has the name given in ``backend:``.
    """

    fix = ("Use one of the known backends, install the package that provides the "
           "backend (as a '%s' entry point), or give a dotted module path whose %s "
           "attribute is a flocker_zfs BackendDescription."
           % (ENTRY_POINT_GROUP, MODULE_ATTRIBUTE))


class BackendLoadError(ConfigError):
    """
    The backend was found but could not be loaded: its import failed, or it
    does not provide a :class:`BackendDescription`.
    """

    fix = ("Check that the backend's package is installed completely; "
           "`python3 -c 'import MODULE'` shows the full error.")


def _is_callable(value):
    return (callable(value), "must be callable")


def unchecked_settings(section, source):
    """
    The default ``settings`` hook: the section's keys as they are (a
    ``pmap``), for backends that check their configuration in their factory.
    """
    return pmap(section)


class BackendDescription(PClass):
    """
    How a host agent builds and drives a storage backend.

    :ivar str name: the backend's name (``zfs``).
    :ivar factory: builds the backend. :func:`backend_from_config` calls
        ``factory(reactor, settings, cluster_id=..., runner=...)``. The
        reactor is passed only when ``needs_reactor`` is true, ``cluster_id``
        only when ``needs_cluster_id`` is true, and ``runner`` (a test
        double for commands) only when one is given. ``settings`` is what
        the ``settings`` hook returned. If the backend has a ``start()``
        method, it is called and may return a ``Deferred``.
    :ivar bool needs_reactor: the factory takes the reactor first.
    :ivar bool needs_cluster_id: the factory takes ``cluster_id=``.
    :ivar required_config: keys the ``dataset:`` section must have, besides
        ``backend``.
    :ivar str deployer_type: ``"p2p"`` for backends whose data moves between
        nodes by replication rather than by attaching shared storage.
    :ivar settings: ``callable(section, source)``. It checks the section (a
        mapping of its keys without ``backend``) and returns the settings the
        factory takes. It raises
        :class:`~flocker_zfs.errors.ConfigError` naming ``source`` (the
        file) and the key, and it has no side effects.
    """

    name = field(type=str, mandatory=True,
                 invariant=lambda value: (bool(value), "name must not be empty"))
    factory = field(mandatory=True, invariant=_is_callable)
    needs_reactor = field(type=bool, initial=True)
    needs_cluster_id = field(type=bool, initial=False)
    required_config = pset_field(str)
    deployer_type = field(type=str, initial="p2p")
    # pyrsistent calls a callable initial value to make the default.
    settings = field(initial=lambda: unchecked_settings, invariant=_is_callable)


def lock_dir_for(settings, runner=None):
    """
    The lock directory a backend built from ``settings`` shares with
    ``peer-serve`` and the node's other flocker-zfs processes:
    ``settings.lock_dir`` when the settings have one, else
    :data:`~flocker_zfs._dslock.DEFAULT_LOCK_DIR` (peer-serve's default).

    With an injected ``runner`` (a test double such as ``FakeZFS``) the
    default directory is not used -- a fake pool has nothing to share with
    the node's real processes, and fake nodes in one process would exclude
    each other through it -- only a lock directory the settings name.

    :return: the directory, or ``None`` for in-process locking only.
    """
    lock_dir = getattr(settings, "lock_dir", None)
    if runner is not None and lock_dir == DEFAULT_LOCK_DIR:
        return None
    if lock_dir is None and runner is None:
        return DEFAULT_LOCK_DIR
    return lock_dir


def zfs_backend(reactor, settings, runner=None):
    """
    The zfs backend's factory: a :class:`ZFSBackend` for checked settings.
    Loading the node identity creates ``settings.node_file`` if it is
    missing. This is the first point where anything is written.

    :param settings: a :class:`~flocker_zfs._config.ZFSSettings`.
    :param runner: an ``IRunner`` (such as ``FakeZFS``); by default real
        processes.  Which per-dataset lock directory is used depends on it:
        :func:`lock_dir_for`.
    """
    return ZFSBackend(reactor, settings.pool, settings.mount_root,
                      load_node_uuid(settings.node_file), runner=runner,
                      lock_dir=lock_dir_for(settings, runner))


def zfs_backend_factory(reactor, pool="flocker", mount_root="/flocker",
                        node_file=DEFAULT_NODE_FILE, runner=None, **section):
    """
    Build the ZFS backend from the ``dataset:`` section's keys given as
    keyword arguments. This older form is kept for existing callers; new code
    uses :func:`flocker_zfs._config.load_config` and
    :func:`backend_from_config`.

    :raises ConfigError: an unknown key, or a bad value (named), before
        anything is created.
    """
    settings = zfs_settings(dict(section, pool=pool, mount_root=mount_root,
                                 node_file=node_file), source="zfs backend arguments")
    return zfs_backend(reactor, settings, runner=runner)


FLOCKER_BACKEND = BackendDescription(
    name="zfs",
    factory=zfs_backend,
    needs_reactor=True,
    needs_cluster_id=False,
    required_config=set(),
    deployer_type="p2p",
    settings=zfs_settings,
)


# -- finding a backend ------------------------------------------------------------

def installed_entry_points(group=ENTRY_POINT_GROUP):
    """
    :return: the installed packages' entry points in ``group``.
    """
    try:
        return list(importlib.metadata.entry_points(group=group))
    except TypeError:       # Python 3.9: no selection by keyword
        return list(importlib.metadata.entry_points().get(group, ()))


def known_backends(entry_points=None):
    """
    :param entry_points: ``callable(group)`` returning entry points; by
        default :func:`installed_entry_points`.
    :return: the names ``backend:`` accepts, apart from module paths: ``zfs``
        first, then the entry points' names, sorted.
    """
    lookup = installed_entry_points if entry_points is None else entry_points
    names = sorted({point.name for point in lookup(ENTRY_POINT_GROUP)} - {FLOCKER_BACKEND.name})
    return [FLOCKER_BACKEND.name] + names


def _failure(error):
    if isinstance(error, SystemExit):
        return clip("it called sys.exit(%s)" % ("" if error.code is None else repr(error.code),))
    return clip("%s: %s" % (type(error).__name__, error) if str(error) else type(error).__name__)


#: What a backend's import may raise and still be reported as a load error.
#: ``SystemExit`` too: a module calling ``sys.exit`` at import would
#: otherwise end the agent or command with its status and no message.
#: ``KeyboardInterrupt`` is left to propagate (the user asked to stop).
_LOAD_ERRORS = (Exception, SystemExit)


def _checked(description, what):
    if not isinstance(description, BackendDescription):
        raise BackendLoadError(
            "%s is %s, not a flocker_zfs BackendDescription" % (
                what, clip(type(description).__name__)),
            fix="Set it to flocker_zfs._plugin.BackendDescription(name=..., factory=..., ...).")
    return description


def _unknown(name, entry_points, detail=None):
    known = known_backends(entry_points)
    close = difflib.get_close_matches(name, known, n=1) if isinstance(name, str) else []
    text = "unknown backend %s" % (shown(name),)
    if close:
        text += " (did you mean %s?)" % (close[0],)
    if detail:
        text += "; %s" % (detail,)
    return UnknownBackend("%s; known backends: %s" % (text, ", ".join(known)))


def is_module_path(name):
    """
    :return: ``True`` if ``name`` is a dotted module path of two or more
        identifiers (``package.module``). A single bare name is never
        imported, so a misspelt ``backend: zsf`` cannot import an unrelated
        top-level module.
    """
    parts = name.split(".")
    return len(parts) >= 2 and all(
        part.isidentifier() and not keyword.iskeyword(part) for part in parts)


def _from_entry_points(name, entry_points):
    lookup = installed_entry_points if entry_points is None else entry_points
    found = {}
    for point in lookup(ENTRY_POINT_GROUP):
        if point.name == name:
            found.setdefault(point.value, point)
    if not found:
        return None
    if len(found) > 1:
        raise BackendLoadError(
            "backend %s is provided by several '%s' entry points: %s" % (
                shown(name), ENTRY_POINT_GROUP, ", ".join(sorted(found))),
            fix="Uninstall all but one of the packages that provide it.")
    (value, point), = found.items()
    what = "the '%s' entry point %s = %s" % (ENTRY_POINT_GROUP, name, value)
    try:
        description = point.load()
    except _LOAD_ERRORS as error:
        raise BackendLoadError("loading %s failed: %s" % (what, _failure(error)))
    return _checked(description, what)


def _from_module(name, entry_points, import_module):
    try:
        module = import_module(name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise _unknown(name, entry_points, "there is no module named %s" % (name,))
        raise BackendLoadError("importing the backend module %s failed: %s"
                               % (name, _failure(error)))
    except _LOAD_ERRORS as error:
        raise BackendLoadError("importing the backend module %s failed: %s"
                               % (name, _failure(error)))
    try:
        description = getattr(module, MODULE_ATTRIBUTE)
    except AttributeError:
        raise BackendLoadError(
            "the backend module %s has no %s attribute" % (name, MODULE_ATTRIBUTE),
            fix="Name the module that defines %s = BackendDescription(...)."
                % (MODULE_ATTRIBUTE,))
    return _checked(description, "%s.%s" % (name, MODULE_ATTRIBUTE))


def find_backend(name, entry_points=None, import_module=None):
    """
    Find the description of the backend called ``name``.

    :param str name: the ``backend:`` value.
    :param entry_points: ``callable(group)`` returning entry points (objects
        with ``name``, ``value`` and ``load()``). The default is
        :func:`installed_entry_points`.
    :param import_module: the default is :func:`importlib.import_module`.
    :return: a :class:`BackendDescription`.
    :raises UnknownBackend: no backend of that name. The message lists the
        known ones and says that a module path is accepted.
    :raises BackendLoadError: the backend's entry point or module failed to
        load, or does not provide a :class:`BackendDescription`.
    """
    if name == FLOCKER_BACKEND.name:
        return FLOCKER_BACKEND
    if not isinstance(name, str) or not name:
        raise _unknown(name, entry_points)
    description = _from_entry_points(name, entry_points)
    if description is not None:
        return description
    if is_module_path(name):
        return _from_module(name, entry_points,
                            importlib.import_module if import_module is None else import_module)
    raise _unknown(name, entry_points)


# -- building it ------------------------------------------------------------------

async def _build(reactor, config, cluster_id, runner):
    description = config.description
    args = [reactor] if description.needs_reactor else []
    kwargs = {}
    if description.needs_cluster_id:
        if cluster_id is None:
            raise ConfigError(
                "%s: backend %s needs the cluster id, and none was given"
                % (config.source, shown(config.backend)),
                fix="Pass cluster_id= to backend_from_config (the host agent knows it).")
        kwargs["cluster_id"] = cluster_id
    if runner is not None:
        kwargs["runner"] = runner
    backend = description.factory(*args, config.settings, **kwargs)
    start = getattr(backend, "start", None)
    if start is not None:
        await maybeDeferred(start)
    return backend


def backend_from_config(reactor, config, cluster_id=None, runner=None):
    """
    Build and start the backend that a checked configuration describes.

    For ``zfs`` this loads the node identity from ``node_file``, creating it
    on first use, then runs :meth:`ZFSBackend.start`. ``start`` detects the
    ZFS implementation, checks the pool and creates the mount root.

    :param reactor: passed to the factory if the description needs it.
    :param config: an :class:`~flocker_zfs._config.AgentConfig`.
    :param cluster_id: passed to the factory if the description needs it.
    :param runner: an ``IRunner`` for the factory (tests pass ``FakeZFS``);
        ``None`` means real processes.
    :return: a ``Deferred`` that fires with the started backend. It fails
        with :class:`ConfigError` if a cluster id is needed and missing, or
        with the factory's or ``start()``'s error.
    """
    return Deferred.fromCoroutine(_build(reactor, config, cluster_id, runner))
