# test-case-name: flocker_zfs.test.test_actions
"""
Eliot action types, ``flocker_zfs:<layer>:<verb>``, kept in one place so
they stay unique and greppable.
"""

#: One zfs/zpool child process (fields: argv; status, duration on success;
#: argv, status, stderr, duration on failure).
COMMAND = "flocker_zfs:runner:command"

#: Backend operations (fields: pool, dataset_id and the operation's inputs).
START = "flocker_zfs:backend:start"
DISCOVER = "flocker_zfs:backend:discover"
GET = "flocker_zfs:backend:get"
CREATE = "flocker_zfs:backend:create"
DESTROY = "flocker_zfs:backend:destroy"
RESIZE = "flocker_zfs:backend:resize"
SNAPSHOT = "flocker_zfs:backend:snapshot"
CLONE = "flocker_zfs:backend:clone"
PREPARE_POOL = "flocker_zfs:backend:prepare_pool"

#: Replication (fields: dataset_id, peer).
PUSH = "flocker_zfs:replication:push"
HANDOFF = "flocker_zfs:replication:handoff"
RECOVER = "flocker_zfs:replication:recover"
PRUNE = "flocker_zfs:replication:prune"

#: Peer transport over SSH (fields: peer, verb, args; a stream adds send_argv
#: and, on success, bytes and duration).  Each ssh or sender child process is
#: a ``PEER_PROCESS`` child action (fields: role, argv; status, duration and,
#: when it failed, stderr).
PEER_CALL = "flocker_zfs:peer:call"
PEER_STREAM = "flocker_zfs:peer:stream"
PEER_PROCESS = "flocker_zfs:peer:process"

ALL = (COMMAND, START, DISCOVER, GET, CREATE, DESTROY, RESIZE, SNAPSHOT, CLONE,
       PREPARE_POOL, PUSH, HANDOFF, RECOVER, PRUNE, PEER_CALL, PEER_STREAM, PEER_PROCESS)

#: One request answered by ``peer-serve`` (fields: verb, args, ssh_connection
#: when known, and the request text when it was rejected; status on success).
#: Its zfs commands are child ``COMMAND`` actions.
PEER_SERVE = "flocker_zfs:peer:serve"

ALL = ALL + (PEER_SERVE,)
