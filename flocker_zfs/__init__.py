"""
flocker-zfs: a Twisted peer-to-peer ZFS dataset backend.

The backend (:class:`ZFSBackend`) manages datasets in one local pool; every
operation returns a ``Deferred``.  :mod:`flocker_zfs.testing` has a fake ZFS
for users' own tests.
"""
