# test-case-name: flocker_zfs.test.test_peerserver
"""
What the peer server has of one dataset, and the stream it receives.

:class:`_Copy` classifies this node's copy of a dataset from one listing:
absent, ours, *adoptable* (an unlabelled copy left by a receive interrupted
before its labels were set; see :mod:`flocker_zfs._peerserver`) or foreign.
:func:`receive_argv` chooses the ``zfs receive`` flags (never ``-F``);
:class:`BytesReceiveStream` is the fake network's stream.
"""

from eliot import start_action
from eliot.twisted import DeferredContext
from pyrsistent import pmap
from twisted.internet.defer import fail, succeed
from zope.interface import implementer

from . import _commands as commands
from ._actions import COMMAND
from .errors import CommandFailed, NotManaged, error_for
from .interfaces import IReceiveStream


@implementer(IReceiveStream)
class BytesReceiveStream(object):
    """
    The stream of a ``receive`` request as bytes, received by a
    :class:`~flocker_zfs.testing.FakeZFS`: the fake network's counterpart
    of the ssh session's stdin.  Usable once, like stdin.

    :param fake: the receiving node's ``FakeZFS``.
    :param bytes data: the ``zfs send`` stream.
    """

    def __init__(self, fake, data):
        self._fake = fake
        self._data = data
        self._used = False

    def receive(self, argv, errors=()):
        argv = [str(arg) for arg in argv]
        with start_action(action_type=COMMAND, argv=argv).context() as action:
            if self._used:
                d = fail(CommandFailed(argv=argv, status=1,
                                       stderr=b"the stream was already consumed\n"))
            else:
                self._used = True
                status, stdout, stderr = self._fake.receive_stream(argv, self._data)
                if status == 0:
                    action.add_success_fields(status=0, stdout_bytes=len(stdout),
                                              stdin_bytes=len(self._data))
                    d = succeed(stdout)
                else:
                    d = fail(error_for(tuple(argv), status, stderr, errors))
            return DeferredContext(d).addActionFinish()


def receive_argv(name, resumable, labels=()):
    """
    ``zfs receive -u [-s] [-o KEY=VALUE ...] NAME``.

    :param bool resumable: ``-s``: keep partial state on interruption so the
        transfer can resume (OpenZFS).
    :param labels: ``(key, value)`` pairs set atomically with the new
        dataset (``-o``, OpenZFS only).
    """
    argv = ["zfs", "receive",
            "-u"]  # never mount on arrival: the copy is labelled, then mounted
    if resumable:
        argv.append("-s")
    for key, value in labels:
        argv += ["-o", "%s=%s" % (key, value)]
    return argv + [name]


# -- what this node has --------------------------------------------------------

ABSENT = "absent"
OURS = "ours"
ADOPTABLE = "adoptable"
FOREIGN = "foreign"


class _Copy(object):
    """
    This node's copy of one dataset, from one listing.

    :ivar str kind: :data:`ABSENT`, :data:`OURS`, :data:`ADOPTABLE` (see
        the module docstring) or :data:`FOREIGN`.
    :ivar dataset: its :class:`~flocker_zfs.model.Dataset` (read as if it
        carried our labels when it does not), or ``None``.
    :ivar props: ``{property: (value, source)}`` of the filesystem.
    :ivar bool clean: no labels but possibly those of an interrupted labelling.
    """

    def __init__(self, name, kind, dataset=None, props=pmap(), clean=False):
        self.name = name
        self.kind = kind
        self.dataset = dataset
        self.props = props
        self.clean = clean

    def local(self, key):
        value, source = self.props.get(key, ("-", "-"))
        return value if source == "local" else None

    def partial(self):
        """``True`` for the partial state an interrupted full ``receive -s`` leaves."""
        return (self.dataset is not None and self.dataset.resume_token is not None
                and not self.dataset.snapshots)

    def refusal(self):
        """:return: the :class:`NotManaged` error for a copy that is not ours."""
        text = "dataset %s exists but is not managed by flocker-zfs" % (self.name,)
        if self.clean and self.partial():
            text += ("; it holds partial state of an interrupted receive without flocker "
                     "labels: if it is flocker's, discard it with `zfs receive -A %s`"
                     % (self.name,))
        elif self.kind == ADOPTABLE:
            only = self.dataset.snapshots[0]
            text += ("; it looks like an interrupted flocker receive of snapshot %s (guid "
                     "%d), and is adopted only by a receive of that snapshot"
                     % (only.name, only.guid))
        return NotManaged(text)


def _relabelled(rows, name, dataset_id):
    """
    :return: a listing (``bytes``) of ``rows`` in which ``name`` carries our
        labels, so :func:`~flocker_zfs._commands.pool_state` reads it.
    """
    rows = dict(rows)
    props = rows[name] = dict(rows[name])
    props[commands.MANAGED] = ("yes", "local")
    props[commands.DATASET_ID] = (dataset_id, "local")
    lines = ["%s\t%s\t%s\t%s\n" % (row, key, value, source)
             for row, props in rows.items() for key, (value, source) in props.items()]
    return "".join(lines).encode("utf-8", "surrogateescape")
