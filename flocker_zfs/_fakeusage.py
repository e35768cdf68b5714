# test-case-name: flocker_zfs.test.test_fakezfs
"""
Usage texts printed by :class:`flocker_zfs.testing.FakeZFS` on bad command lines.

The zfs-fuse texts are copied byte for byte from zfs-fuse 0.7's own stderr
(captured from ``/usr/sbin/zfs`` and ``/usr/sbin/zpool``), so a fake answer to
``zfs version`` or ``zfs list -p`` is exactly what zfs-fuse prints.  The
OpenZFS 2.1 property table is copied from recorded OpenZFS 2.1.11 output; its
command help lines are written from OpenZFS's ``zfs_main.c`` help strings (the
ones recorded so far match; the top-level listing is abridged).

Pure data and string building; nothing here runs anything.
"""

ZFS_FUSE = "zfs-fuse"
OPENZFS = "openzfs"

_FUSE_ZFS_COMMANDS = (
    "\tcreate [-p] [-o property=value] ... <filesystem>\n"
    "\tcreate [-ps] [-b blocksize] [-o property=value] ... -V <size> <volume>\n"
    "\tdestroy [-rRf] <filesystem|volume>\n"
    "\tdestroy [-rRd] <snapshot>\n"
    "\n"
    "\tsnapshot [-r] [-o property=value] ... <filesystem@snapname|volume@snapname>\n"
    "\trollback [-rRf] <snapshot>\n"
    "\tclone [-p] [-o property=value] ... <snapshot> <filesystem|volume>\n"
    "\tpromote <clone-filesystem>\n"
    "\trename <filesystem|volume|snapshot> <filesystem|volume|snapshot>\n"
    "\trename -p <filesystem|volume> <filesystem|volume>\n"
    "\trename -r <snapshot> <snapshot>\n"
    "\tlist [-rH][-d max] [-o property[,...]] [-t type[,...]] [-s property] ...\n"
    "\t    [-S property] ... [filesystem|volume|snapshot] ...\n"
    "\n"
    "\tset <property=value> <filesystem|volume|snapshot> ...\n"
    '\tget [-rHp] [-d max] [-o "all" | field[,...]] [-s source[,...]]\n'
    '\t    <"all" | property[,...]> [filesystem|volume|snapshot] ...\n'
    "\tinherit [-rS] <property> <filesystem|volume|snapshot> ...\n"
    "\tupgrade [-v]\n"
    "\tupgrade [-r] [-V version] <-a | filesystem ...>\n"
    "\tuserspace [-hniHp] [-o field[,...]] [-sS field] ... [-t type[,...]]\n"
    "\t    <filesystem|snapshot>\n"
    "\tgroupspace [-hniHpU] [-o field[,...]] [-sS field] ... [-t type[,...]]\n"
    "\t    <filesystem|snapshot>\n"
    "\n"
    "\tmount\n"
    "\tmount [-vO] [-o opts] <-a | filesystem>\n"
    "\tunmount [-f] <-a | filesystem|mountpoint>\n"
    "\tshare <-a | filesystem>\n"
    "\tunshare <-a | filesystem|mountpoint>\n"
    "\n"
    "\tsend [-RDp] [-[iI] snapshot] <snapshot>\n"
    "\treceive [-vnF] <filesystem|volume|snapshot>\n"
    "\treceive [-vnF] -d <filesystem>\n"
    "\n"
    "\tallow <filesystem|volume>\n"
    '\tallow [-ldug] <"everyone"|user|group>[,...] <perm|@setname>[,...]\n'
    "\t    <filesystem|volume>\n"
    "\tallow [-ld] -e <perm|@setname>[,...] <filesystem|volume>\n"
    "\tallow -c <perm|@setname>[,...] <filesystem|volume>\n"
    "\tallow -s @setname <perm|@setname>[,...] <filesystem|volume>\n"
    "\n"
    '\tunallow [-rldug] <"everyone"|user|group>[,...]\n'
    "\t    [<perm|@setname>[,...]] <filesystem|volume>\n"
    "\tunallow [-rld] -e [<perm|@setname>[,...]] <filesystem|volume>\n"
    "\tunallow [-r] -c [<perm|@setname>[,...]] <filesystem|volume>\n"
    "\tunallow [-r] -s @setname [<perm|@setname>[,...]] <filesystem|volume>\n"
    "\n"
    "\thold [-r] <tag> <snapshot> ...\n"
    "\tholds [-r] <snapshot> ...\n"
    "\trelease [-r] <tag> <snapshot> ...\n"
)

_FUSE_PROPERTY_TABLE = (
    "\n"
    "The following properties are supported:\n"
    "\n"
    "\tPROPERTY       EDIT  INHERIT   VALUES\n"
    "\n"
    "\tavailable        NO       NO   <size>\n"
    "\tcompressratio    NO       NO   <1.00x or higher if compressed>\n"
    "\tcreation         NO       NO   <date>\n"
    "\tdefer_destroy    NO       NO   yes | no\n"
    "\tmounted          NO       NO   yes | no\n"
    "\torigin           NO       NO   <snapshot>\n"
    "\treferenced       NO       NO   <size>\n"
    "\ttype             NO       NO   filesystem | volume | snapshot\n"
    "\tused             NO       NO   <size>\n"
    "\tusedbychildren   NO       NO   <size>\n"
    "\tusedbydataset    NO       NO   <size>\n"
    "\tusedbyrefreservation  NO       NO   <size>\n"
    "\tusedbysnapshots  NO       NO   <size>\n"
    "\tuserrefs         NO       NO   <count>\n"
    "\taclinherit      YES      YES   discard | noallow | restricted | passthrough"
    " | passthrough-x\n"
    "\taclmode         YES      YES   discard | groupmask | passthrough\n"
    "\tatime           YES      YES   on | off\n"
    "\tcanmount        YES       NO   on | off | noauto\n"
    "\tcasesensitivity  NO      YES   sensitive | insensitive | mixed\n"
    "\tchecksum        YES      YES   on | off | fletcher2 | fletcher4 | sha256\n"
    "\tcompression     YES      YES   on | off | lzjb | gzip | gzip-[1-9] | zle\n"
    "\tcopies          YES      YES   1 | 2 | 3\n"
    "\tdedup           YES      YES   on | off | verify | sha256[,verify]\n"
    "\tdevices         YES      YES   on | off\n"
    "\texec            YES      YES   on | off\n"
    "\tlogbias         YES      YES   latency | throughput\n"
    "\tmlslabel        YES      YES   <sensitivity label>\n"
    "\tmountpoint      YES      YES   <path> | legacy | none\n"
    "\tnbmand          YES      YES   on | off\n"
    "\tnormalization    NO      YES   none | formC | formD | formKC | formKD\n"
    "\tprimarycache    YES      YES   all | none | metadata\n"
    "\tquota           YES       NO   <size> | none\n"
    "\treadonly        YES      YES   on | off\n"
    "\trecordsize      YES      YES   512 to 128k, power of 2\n"
    "\trefquota        YES       NO   <size> | none\n"
    "\trefreservation  YES       NO   <size> | none\n"
    "\treservation     YES       NO   <size> | none\n"
    "\tsecondarycache  YES      YES   all | none | metadata\n"
    "\tsetuid          YES      YES   on | off\n"
    "\tsharenfs        YES      YES   on | off | share(1M) options\n"
    "\tsharesmb        YES      YES   on | off | sharemgr(1M) options\n"
    "\tsnapdir         YES      YES   hidden | visible\n"
    "\tutf8only         NO      YES   on | off\n"
    "\tversion         YES       NO   1 | 2 | 3 | 4 | current\n"
    "\tvolblocksize     NO      YES   512 to 128k, power of 2\n"
    "\tvolsize         YES       NO   <size>\n"
    "\tvscan           YES      YES   on | off\n"
    "\txattr           YES      YES   on | off\n"
    "\tzoned           YES      YES   on | off\n"
    "\tuserused@...     NO       NO   <size>\n"
    "\tgroupused@...    NO       NO   <size>\n"
    "\tuserquota@...   YES       NO   <size> | none\n"
    "\tgroupquota@...  YES       NO   <size> | none\n"
    "\n"
    "Sizes are specified in bytes with standard units such as K, M, G, etc.\n"
    "\n"
    "User-defined properties can be specified by using a name containing a colon (:).\n"
    "\n"
    "The {user|group}{used|quota}@ properties must be appended with\n"
    "a user or group specifier of one of these forms:\n"
    '    POSIX name      (eg: "matt")\n'
    '    POSIX id        (eg: "126829")\n'
    '    SMB name@domain (eg: "matt@sun")\n'
    '    SMB SID         (eg: "S-1-234-567-89")\n'
)

_FUSE_ZPOOL_COMMANDS = (
    "\tcreate [-fn] [-o property=value] ... \n"
    "\t    [-O file-system-property=value] ... \n"
    "\t    [-m mountpoint] [-R root] <pool> <vdev> ...\n"
    "\tdestroy [-f] <pool>\n"
    "\n"
    "\tadd [-fn] [-o property=value] <pool> <vdev> ...\n"
    "\tremove <pool> <device> ...\n"
    "\n"
    "\tlist [-H] [-o property[,...]] [pool] ...\n"
    "\tiostat [-v] [-T d|u] [pool] ... [interval [count]]\n"
    "\tstatus [-vx] [pool] ...\n"
    "\n"
    "\tonline <pool> <device> ...\n"
    "\toffline [-t] <pool> <device> ...\n"
    "\tclear [-nF] <pool> [device]\n"
    "\n"
    "\tattach [-f] [-o property=value] <pool> <device> <new-device>\n"
    "\tdetach <pool> <device>\n"
    "\treplace [-f] [-o property=value] <pool> <device> [new-device]\n"
    "\tsplit [-n] [-R altroot] [-o mntopts]\n"
    "\t    [-o property=value] <pool> <newpool> [<device> ...]\n"
    "\n"
    "\tscrub [-s] <pool> ...\n"
    "\n"
    "\timport [-d dir] [-D]\n"
    "\timport [-d dir | -c cachefile] [-n] -F <pool | id>\n"
    "\timport [-o mntopts] [-o property=value] ... \n"
    "\t    [-d dir | -c cachefile] [-D] [-f] [-R root] -a [-v]\n"
    "\timport [-o mntopts] [-o property=value] ... \n"
    "\t    [-d dir | -c cachefile] [-D] [-f] [-R root] <pool | id> [newpool]\n"
    "\texport [-f] <pool> ...\n"
    "\tupgrade\n"
    "\tupgrade -v\n"
    "\tupgrade [-V version] <-a | pool ...>\n"
    "\n"
    "\thistory [-il] [<pool>] ...\n"
    '\tget <"all" | property[,...]> <pool> ...\n'
    "\tset <property=value> <pool> \n"
)

_FUSE_ZPOOL_LIST_TABLE = (
    "\n"
    "the following properties are supported:\n"
    "\n"
    "\tPROPERTY         EDIT   VALUES\n"
    "\n"
    "\tallocated          NO   <size>\n"
    "\tcapacity           NO   <size>\n"
    "\tdedupratio         NO   <1.00x or higher if deduped>\n"
    "\tfree               NO   <size>\n"
    "\tguid               NO   <guid>\n"
    "\thealth             NO   <state>\n"
    "\tsize               NO   <size>\n"
    "\taltroot           YES   <path>\n"
    "\tashift            YES   <ashift, 9-13, or 0=default>\n"
    "\tautoexpand        YES   on | off\n"
    "\tautoreplace       YES   on | off\n"
    "\tbootfs            YES   <filesystem>\n"
    "\tcachefile         YES   <file> | none\n"
    "\tdedupditto        YES   <threshold (min 100)>\n"
    "\tdelegation        YES   on | off\n"
    "\tfailmode          YES   wait | continue | panic\n"
    "\tlistsnapshots     YES   on | off\n"
    "\tversion           YES   <version>\n"
)


#: OpenZFS 2.1.11's top-level ``zfs`` listing, as recorded in the VM tier.
_OPENZFS_ZFS_COMMANDS = (
    '\tversion\n'
    '\n'
    '\tcreate [-Pnpuv] [-o property=value] ... <filesystem>\n'
    '\tcreate [-Pnpsv] [-b blocksize] [-o property=value] ... -V <size> <volume>\n'
    '\tdestroy [-fnpRrv] <filesystem|volume>\n'
    '\tdestroy [-dnpRrv] <filesystem|volume>@<snap>[%<snap>][,...]\n'
    '\tdestroy <filesystem|volume>#<bookmark>\n'
    '\n'
    '\tsnapshot [-r] [-o property=value] ... <filesystem|volume>@<snap> ...\n'
    '\trollback [-rRf] <snapshot>\n'
    '\tclone [-p] [-o property=value] ... <snapshot> <filesystem|volume>\n'
    '\tpromote <clone-filesystem>\n'
    '\trename [-f] <filesystem|volume|snapshot> <filesystem|volume|snapshot>\n'
    '\trename -p [-f] <filesystem|volume> <filesystem|volume>\n'
    '\trename -u [-f] <filesystem> <filesystem>\n'
    '\trename -r <snapshot> <snapshot>\n'
    '\tbookmark <snapshot|bookmark> <newbookmark>\n'
    '\tprogram [-jn] [-t <instruction limit>] [-m <memory limit (b)>]\n'
    '\t    <pool> <program file> [lua args...]\n'
    '\n'
    '\tlist [-Hp] [-r|-d max] [-o property[,...]] [-s property]...\n'
    '\t    [-S property]... [-t type[,...]] [filesystem|volume|snapshot] ...\n'
    '\n'
    '\tset <property=value> ... <filesystem|volume|snapshot> ...\n'
    '\tget [-rHp] [-d max] [-o "all" | field[,...]]\n'
    '\t    [-t type[,...]] [-s source[,...]]\n'
    '\t    <"all" | property[,...]> [filesystem|volume|snapshot|bookmark] ...\n'
    '\tinherit [-rS] <property> <filesystem|volume|snapshot> ...\n'
    '\tupgrade [-v]\n'
    '\tupgrade [-r] [-V version] <-a | filesystem ...>\n'
    '\n'
    '\tuserspace [-Hinp] [-o field[,...]] [-s field] ...\n'
    '\t    [-S field] ... [-t type[,...]] <filesystem|snapshot|path>\n'
    '\tgroupspace [-Hinp] [-o field[,...]] [-s field] ...\n'
    '\t    [-S field] ... [-t type[,...]] <filesystem|snapshot|path>\n'
    '\tprojectspace [-Hp] [-o field[,...]] [-s field] ... \n'
    '\t    [-S field] ... <filesystem|snapshot|path>\n'
    '\n'
    '\tproject [-d|-r] <directory|file ...>\n'
    '\tproject -c [-0] [-d|-r] [-p id] <directory|file ...>\n'
    '\tproject -C [-k] [-r] <directory ...>\n'
    '\tproject [-p id] [-r] [-s] <directory ...>\n'
    '\n'
    '\tmount\n'
    '\tmount [-flvO] [-o opts] <-a | filesystem>\n'
    '\tunmount [-fu] <-a | filesystem|mountpoint>\n'
    '\tshare [-l] <-a [nfs|smb] | filesystem>\n'
    '\tunshare <-a [nfs|smb] | filesystem|mountpoint>\n'
    '\n'
    '\tsend [-DnPpRVvLecwhb] [-[i|I] snapshot] <snapshot>\n'
    '\tsend [-DnVvPLecw] [-i snapshot|bookmark] <filesystem|volume|snapshot>\n'
    '\tsend [-DnPpVvLec] [-i bookmark|snapshot] --redact <bookmark> <snapshot>\n'
    '\tsend [-nVvPe] -t <receive_resume_token>\n'
    '\tsend [-PnVv] --saved filesystem\n'
    '\treceive [-vMnsFhu] [-o <property>=<value>] ... [-x <property>] ...\n'
    '\t    <filesystem|volume|snapshot>\n'
    '\treceive [-vMnsFhu] [-o <property>=<value>] ... [-x <property>] ... \n'
    '\t    [-d | -e] <filesystem>\n'
    '\treceive -A <filesystem|volume>\n'
    '\n'
    '\tallow <filesystem|volume>\n'
    '\tallow [-ldug] <"everyone"|user|group>[,...] <perm|@setname>[,...]\n'
    '\t    <filesystem|volume>\n'
    '\tallow [-ld] -e <perm|@setname>[,...] <filesystem|volume>\n'
    '\tallow -c <perm|@setname>[,...] <filesystem|volume>\n'
    '\tallow -s @setname <perm|@setname>[,...] <filesystem|volume>\n'
    '\n'
    '\tunallow [-rldug] <"everyone"|user|group>[,...]\n'
    '\t    [<perm|@setname>[,...]] <filesystem|volume>\n'
    '\tunallow [-rld] -e [<perm|@setname>[,...]] <filesystem|volume>\n'
    '\tunallow [-r] -c [<perm|@setname>[,...]] <filesystem|volume>\n'
    '\tunallow [-r] -s @setname [<perm|@setname>[,...]] <filesystem|volume>\n'
    '\n'
    '\thold [-r] <tag> <snapshot> ...\n'
    '\tholds [-rH] <snapshot> ...\n'
    '\trelease [-r] <tag> <snapshot> ...\n'
    '\tdiff [-FHt] <snapshot> [snapshot|filesystem]\n'
    '\tload-key [-rn] [-L <keylocation>] <-a | filesystem|volume>\n'
    '\tunload-key [-r] <-a | filesystem|volume>\n'
    '\tchange-key [-l] [-o keyformat=<value>]\n'
    '\t    [-o keylocation=<value>] [-o pbkdf2iters=<value>]\n'
    '\t    <filesystem|volume>\n'
    '\tchange-key -i [-l] <filesystem|volume>\n'
    '\tredact <snapshot> <bookmark> <redaction_snapshot> ...\n'
    '\twait [-t <activity>] <filesystem>\n'
)

_OPENZFS_ZPOOL_COMMANDS = (
    "\tversion\n"
    "\n"
    "\tcreate [-fnd] [-o property=value] ... \n"
    "\t    [-O file-system-property=value] ... \n"
    "\t    [-m mountpoint] [-R root] <pool> <vdev> ...\n"
    "\tdestroy [-f] <pool>\n"
    "\n"
    "\tlist [-gHLpPv] [-o property[,...]] [-T d|u] [pool] ...\n"
    "\t    [interval [count]]\n"
    "\tstatus [-c [script1,script2,...]] [-igLpPstvxD]  [-T d|u] [pool] ... \n"
    "\t    [interval [count]]\n"
    "\n"
    "\timport [-d dir] [-D]\n"
    "\texport [-af] <pool> ...\n"
    "\tget [-Hp] [-o \"all\" | field[,...]] <\"all\" | property[,...]> <pool> ...\n"
    "\tset <property=value> <pool> \n"
)

_OPENZFS_ZPOOL_LIST_TABLE = (
    "\n"
    "the following properties are supported:\n"
    "\n"
    "\tPROPERTY             EDIT   VALUES\n"
    "\n"
    "\tallocated              NO   <size>\n"
    "\tcapacity               NO   <size>\n"
    "\tfree                   NO   <size>\n"
    "\tguid                   NO   <guid>\n"
    "\thealth                 NO   <state>\n"
    "\tsize                   NO   <size>\n"
)

_OPENZFS_PROPERTY_TABLE = (
    "\n"
    "The following properties are supported:\n"
    "\n"
    "\tPROPERTY       EDIT  INHERIT   VALUES\n"
    "\n"
    "\tavailable        NO       NO   <size>\n"
    "\tclones           NO       NO   <dataset>[,...]\n"
    "\tcompressratio    NO       NO   <1.00x or higher if compressed>\n"
    "\tcreatetxg        NO       NO   <uint64>\n"
    "\tcreation         NO       NO   <date>\n"
    "\tdefer_destroy    NO       NO   yes | no\n"
    "\tencryptionroot   NO       NO   <filesystem | volume>\n"
    "\tfilesystem_count  NO       NO   <count>\n"
    "\tguid             NO       NO   <uint64>\n"
    "\tkeystatus        NO       NO   none | unavailable | available\n"
    "\tlogicalreferenced  NO       NO   <size>\n"
    "\tlogicalused      NO       NO   <size>\n"
    "\tmounted          NO       NO   yes | no\n"
    "\tobjsetid         NO       NO   <uint64>\n"
    "\torigin           NO       NO   <snapshot>\n"
    "\treceive_resume_token  NO       NO   <string token>\n"
    "\tredact_snaps     NO       NO   <snapshot>[,...]\n"
    "\trefcompressratio  NO       NO   <1.00x or higher if compressed>\n"
    "\treferenced       NO       NO   <size>\n"
    "\tsnapshot_count   NO       NO   <count>\n"
    "\ttype             NO       NO   filesystem | volume | snapshot | bookmark\n"
    "\tused             NO       NO   <size>\n"
    "\tusedbychildren   NO       NO   <size>\n"
    "\tusedbydataset    NO       NO   <size>\n"
    "\tusedbyrefreservation  NO       NO   <size>\n"
    "\tusedbysnapshots  NO       NO   <size>\n"
    "\tuserrefs         NO       NO   <count>\n"
    "\twritten          NO       NO   <size>\n"
    "\taclinherit      YES      YES   discard | noallow | restricted | passthrough | passthrou"
    "gh-x\n"
    "\taclmode         YES      YES   discard | groupmask | passthrough | restricted\n"
    "\tacltype         YES      YES   off | nfsv4 | posix\n"
    "\tatime           YES      YES   on | off\n"
    "\tcanmount        YES       NO   on | off | noauto\n"
    "\tcasesensitivity  NO      YES   sensitive | insensitive | mixed\n"
    "\tchecksum        YES      YES   on | off | fletcher2 | fletcher4 | sha256 | sha512 | ske"
    "in | edonr\n"
    "\tcompression     YES      YES   on | off | lzjb | gzip | gzip-[1-9] | zle | lz4 | zstd |"
    " zstd-[1-19] | zstd-fast | zstd-fast-[1-10,20,30,40,50,60,70,80,90,100,500,1000]\n"
    "\tcontext         YES       NO   <selinux context>\n"
    "\tcopies          YES      YES   1 | 2 | 3\n"
    "\tdedup           YES      YES   on | off | verify | sha256[,verify] | sha512[,verify] | "
    "skein[,verify] | edonr,verify\n"
    "\tdefcontext      YES       NO   <selinux defcontext>\n"
    "\tdevices         YES      YES   on | off\n"
    "\tdnodesize       YES      YES   legacy | auto | 1k | 2k | 4k | 8k | 16k\n"
    "\tencryption       NO      YES   on | off | aes-128-ccm | aes-192-ccm | aes-256-ccm | aes"
    "-128-gcm | aes-192-gcm | aes-256-gcm\n"
    "\texec            YES      YES   on | off\n"
    "\tfilesystem_limit YES       NO   <count> | none\n"
    "\tfscontext       YES       NO   <selinux fscontext>\n"
    "\tkeyformat        NO       NO   none | raw | hex | passphrase\n"
    "\tkeylocation     YES       NO   prompt | <file URI> | <https URL> | <http URL>\n"
    "\tlogbias         YES      YES   latency | throughput\n"
    "\tmlslabel        YES      YES   <sensitivity label>\n"
    "\tmountpoint      YES      YES   <path> | legacy | none\n"
    "\tnbmand          YES      YES   on | off\n"
    "\tnormalization    NO      YES   none | formC | formD | formKC | formKD\n"
    "\toverlay         YES      YES   on | off\n"
    "\tpbkdf2iters      NO       NO   <iters>\n"
    "\tprimarycache    YES      YES   all | none | metadata\n"
    "\tquota           YES       NO   <size> | none\n"
    "\treadonly        YES      YES   on | off\n"
    "\trecordsize      YES      YES   512 to 1M, power of 2\n"
    "\tredundant_metadata YES      YES   all | most | some | none\n"
    "\trefquota        YES       NO   <size> | none\n"
    "\trefreservation  YES       NO   <size> | none\n"
    "\trelatime        YES      YES   on | off\n"
    "\treservation     YES       NO   <size> | none\n"
    "\trootcontext     YES       NO   <selinux rootcontext>\n"
    "\tsecondarycache  YES      YES   all | none | metadata\n"
    "\tsetuid          YES      YES   on | off\n"
    "\tsharenfs        YES      YES   on | off | NFS share options\n"
    "\tsharesmb        YES      YES   on | off | SMB share options\n"
    "\tsnapdev         YES      YES   hidden | visible\n"
    "\tsnapdir         YES      YES   hidden | visible\n"
    "\tsnapshot_limit  YES       NO   <count> | none\n"
    "\tspecial_small_blocks YES      YES   zero or 512 to 1M, power of 2\n"
    "\tsync            YES      YES   standard | always | disabled\n"
    "\tutf8only         NO      YES   on | off\n"
    "\tversion         YES       NO   1 | 2 | 3 | 4 | 5 | current\n"
    "\tvolblocksize     NO      YES   512 to 128k, power of 2\n"
    "\tvolmode         YES      YES   default | full | geom | dev | none\n"
    "\tvolsize         YES       NO   <size>\n"
    "\tvscan           YES      YES   on | off\n"
    "\txattr           YES      YES   on | off | dir | sa\n"
    "\tzoned           YES      YES   on | off\n"
    "\tuserused@...     NO       NO   <size>\n"
    "\tgroupused@...    NO       NO   <size>\n"
    "\tprojectused@...  NO       NO   <size>\n"
    "\tuserobjused@...  NO       NO   <size>\n"
    "\tgroupobjused@...  NO       NO   <size>\n"
    "\tprojectobjused@...  NO       NO   <size>\n"
    "\tuserquota@...   YES       NO   <size> | none\n"
    "\tgroupquota@...  YES       NO   <size> | none\n"
    "\tprojectquota@... YES       NO   <size> | none\n"
    "\tuserobjquota@... YES       NO   <size> | none\n"
    "\tgroupobjquota@... YES       NO   <size> | none\n"
    "\tprojectobjquota@... YES       NO   <size> | none\n"
    "\twritten@<snap>   NO       NO   <size>\n"
    "\twritten#<bookmark>  NO       NO   <size>\n"
    "\n"
    "Sizes are specified in bytes with standard units such as K, M, G, etc.\n"
    "\n"
    "User-defined properties can be specified by using a name containing a colon (:).\n"
    "\n"
    "The {user|group|project}[obj]{used|quota}@ properties must be appended with\n"
    "a user|group|project specifier of one of these forms:\n"
    '    POSIX name      (eg: "matt")\n'
    '    POSIX id        (eg: "126829")\n'
    '    SMB name@domain (eg: "matt@sun")\n'
    '    SMB SID         (eg: "S-1-234-567-89")\n'
)

_ZFS_TAIL = ("\nFor the property list, run: zfs set|get\n"
             "\nFor the delegated permission list, run: zfs allow|unallow\n")

#: Commands whose usage is followed by the property table.
_WITH_TABLE = ("set", "get", "list", "inherit")


def _listing(profile, program):
    """The full command listing of ``program`` in ``profile``."""
    if program == "zpool":
        return _FUSE_ZPOOL_COMMANDS if profile == ZFS_FUSE else _OPENZFS_ZPOOL_COMMANDS
    return _FUSE_ZFS_COMMANDS if profile == ZFS_FUSE else _OPENZFS_ZFS_COMMANDS


def command_help(profile, program, command):
    """
    The help lines of one subcommand, as ``usage`` prints them.

    They are taken from the full listing (the lines starting with the
    command's name and their indented continuations), which is how the real
    tools build them from one table.

    :return: ``str``, or ``None`` if the listing has no such command.
    """
    lines = []
    inside = False
    for line in _listing(profile, program).split("\n"):
        if line == "\t" + command or line.startswith("\t%s " % (command,)):
            inside = True
            lines.append(line)
        elif inside and line.startswith("\t    "):
            lines.append(line)
        else:
            inside = False
    if not lines:
        return None
    text = "\n".join(lines)
    # zfs-fuse's help string for rename lacks the final newline, so its
    # usage runs straight into the "For the property list" line.
    if not (profile == ZFS_FUSE and command == "rename"):
        text += "\n"
    return text


def usage(profile, program, command=None, message=""):
    """
    The text ``zfs``/``zpool`` print on stderr with exit status 2.

    :param str profile: :data:`ZFS_FUSE` or :data:`OPENZFS`.
    :param str program: ``"zfs"`` or ``"zpool"``.
    :param command: the subcommand whose usage to print, or ``None`` for
        the top-level listing.
    :param str message: the line printed before ``usage:`` (without its
        newline), e.g. ``"invalid option 'p'"``; empty for none.
    :return: ``bytes``.
    """
    head = message + "\n" if message else ""
    if command is not None:
        help_text = command_help(profile, program, command)
    else:
        help_text = None
    if help_text is None:
        text = ("usage: %s command args ...\n"
                "where 'command' is one of the following:\n\n" % (program,))
        text += _listing(profile, program)
        if program == "zfs":
            text += "\nEach dataset is of the form: pool/[dataset/]*dataset[@name]\n" + _ZFS_TAIL
        return (head + text).encode("utf-8")
    text = "usage:\n" + help_text
    if program == "zpool":
        if command in ("list", "get"):
            text += (_FUSE_ZPOOL_LIST_TABLE if profile == ZFS_FUSE
                     else _OPENZFS_ZPOOL_LIST_TABLE)
    elif command in _WITH_TABLE:
        text += _FUSE_PROPERTY_TABLE if profile == ZFS_FUSE else _OPENZFS_PROPERTY_TABLE
    else:
        text += _ZFS_TAIL
    return (head + text).encode("utf-8")
