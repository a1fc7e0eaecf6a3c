"""Every bound the arm server puts on what a client can make it hold or do.

One place for the numbers of docs/protocol.md §11 "Bounds" (tests check the
page against this module).  Each bound exists because an outsider could
otherwise grow a resource without limit: memory, the command thread's time,
the state message, the audit log.
"""

from __future__ import annotations

from robocell.motion.limits import MAX_MOTION_DURATION as MAX_MOTION_DURATION
from robocell.motion.limits import MAX_TRAJECTORY_SAMPLES as MAX_TRAJECTORY_SAMPLES
from robocell.motion.limits import MIN_SPEED as MIN_SPEED

# ---- messages (checked before decoding, or by the decoder)
MAX_FOLLOW_MESSAGE = 1024 * 1024  # bytes in a `follow` request frame (60 s at 100 Hz for 7 joints is ~0.8 MB)
MAX_COMMAND_MESSAGE = 64 * 1024  # bytes in any other request frame
MAX_SOCKET_MESSAGE = MAX_FOLLOW_MESSAGE + 64 * 1024  # ZMQ_MAXMSGSIZE: libzmq drops a peer sending a bigger frame
MAX_FRAMES = 1  # data frames per request; the rest of a longer multipart message is discarded unread
MAX_ARRAY = 200_000  # elements in any one msgpack array
MAX_MAP = 64  # keys in any one msgpack map
MAX_STR = 4096  # bytes in any one string
MAX_DEPTH = 8  # nesting of arrays and maps (a request needs 4: envelope, args, follow's q, a row)
RCVHWM = 16  # messages queued per connection before ZeroMQ stops reading it (x MAX_SOCKET_MESSAGE = 17 MiB)
SNDHWM = 1000  # replies queued per connection (a client that never reads loses the oldest, not our memory)
QUEUE_MESSAGES = 4096  # requests read from the socket but not handled yet (stops jump the queue)
QUEUE_BYTES = 8 * 1024 * 1024  # bytes of those requests
CONNECTION_QUEUE = 1024  # of them from one connection (the Python client keeps at most 64 in flight)
MAX_REPLY_MSG = 1000  # characters of an error reply's `msg`
MAX_PLANS = 4  # motion commands being planned at once (more: BUSY)
MAX_WAITING_RETRIES = 16  # retries of one command id waiting for its first reply (more are dropped)

# ---- numeric ranges of request fields
MAX_DEADLINE = 3600.0  # s
# MIN_SPEED (fraction of the limits), MAX_MOTION_DURATION (s) and MAX_TRAJECTORY_SAMPLES are the core
# planners' own (robocell.motion.planning, robocell.motion.trajectory): simulated and served arms refuse the same moves.
MIN_SAMPLE_INTERVAL = 1e-4  # s between successive `follow` sample times
SERVO_DT = (0.0002, 1.0)  # s: the servo stream's period
MAX_GRIPPER_FORCE = 200.0  # N
MAX_STOP_REASON = 120  # characters of a stop's `reason` that are kept (a longer one is cut, never refused)

# ---- the latched fault list in the state message
MAX_FAULTS = 16  # distinct latched faults listed; later distinct ones are counted in one overflow entry

# ---- request rate, per client identity (token bucket); `stop` is never limited
RATE = 5000.0  # requests per second, sustained
RATE_BURST = 5000  # requests accepted at once (a second's worth: a server stall makes requests arrive in bursts)

# ---- exactly-once reply cache
CACHE_PER_CLIENT = 1024  # replies remembered per client identity
CACHE_CLIENT_BYTES = 256 * 1024  # bytes of replies remembered per client identity
CACHE_AGE = MAX_DEADLINE  # s a reply is remembered (a retry is only useful within its deadline)
CACHE_CLIENTS = 64  # client identities remembered; the least recently heard is forgotten first

# ---- audit log
AUDIT_MAX_BYTES = 16 * 1024 * 1024  # bytes per audit file before it is rotated
AUDIT_KEEP = 5  # rotated files kept (FILE.1 newest ... FILE.5 oldest)
AUDIT_RATE = 1.0  # lines per second per (client, op, code), after a burst of AUDIT_BURST
AUDIT_BURST = 10
AUDIT_LIMITERS = 4096  # (client, op, code) triples tracked by the audit rate limit
