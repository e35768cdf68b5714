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

#: Agent integration (issue 5).  Loading agent.yml (fields: path, backend).
CONFIG_LOAD = "flocker_zfs:config:load"
#: The deployer: discovering this node's state (fields: node_uuid); each
#: state change it plans runs as one of the ``CHANGE_*`` actions (fields:
#: dataset_id and the change's inputs, e.g. node_uuid, maximum_size).
DEPLOYER_DISCOVER = "flocker_zfs:deployer:discover"
CHANGE_CREATE = "flocker_zfs:change:create"
CHANGE_RESIZE = "flocker_zfs:change:resize"
CHANGE_PUSH = "flocker_zfs:change:push"
CHANGE_HANDOFF = "flocker_zfs:change:handoff"
CHANGE_RECOVER = "flocker_zfs:change:recover"
CHANGE_DELETE = "flocker_zfs:change:delete"
#: Making this node's copy of a dataset writable elsewhere too read-only
#: (fields: dataset_id, node_uuid: the keeper; on success outcome, snapshot).
CHANGE_DEMOTE = "flocker_zfs:change:demote"
CHANGE_SEQUENTIALLY = "flocker_zfs:change:sequentially"
CHANGE_IN_PARALLEL = "flocker_zfs:change:in_parallel"
#: The reference agent: one convergence iteration (fields: node_uuid,
#: changes started, skipped busy datasets), reading the deployment file
#: (fields: path, changed), asking the other nodes for their state (fields:
#: node_uuid, reachable).
AGENT_ITERATION = "flocker_zfs:agent:iteration"
AGENT_DEPLOYMENT = "flocker_zfs:agent:deployment"
AGENT_CLUSTER_STATE = "flocker_zfs:agent:cluster_state"
#: CLI commands that change the node or check it (fields: the options used).
CLI_INIT = "flocker_zfs:cli:init"
CLI_DOCTOR = "flocker_zfs:cli:doctor"

ALL = ALL + (CONFIG_LOAD, DEPLOYER_DISCOVER, CHANGE_CREATE, CHANGE_RESIZE, CHANGE_PUSH,
             CHANGE_HANDOFF, CHANGE_RECOVER, CHANGE_DELETE, CHANGE_DEMOTE, CHANGE_SEQUENTIALLY,
             CHANGE_IN_PARALLEL, AGENT_ITERATION, AGENT_DEPLOYMENT, AGENT_CLUSTER_STATE,
             CLI_INIT, CLI_DOCTOR)
