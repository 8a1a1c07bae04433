"""A local MongoDB Atlas simulator: a real HTTP server on loopback speaking the flex cluster and flex backup
contract.

    sim = AtlasSimulator(clock=VirtualClock(), scenario="ok"); base_url = sim.start(); ...; sim.stop()

It serves POST /api/oauth/token (service accounts) and HTTP Digest (API keys); listing, creating, reading
and deleting flex clusters (flex-clusters-openapi.yaml); the snapshot and restore-job operations
(flex-backup-openapi.yaml). It checks every request against those specs (Atlas-shaped ApiError answers;
broken requests listed in ``sim.violations``), checks its own answers against them too, and logs every call
in ``sim.calls``. Everything moves with the clock, computed on each read; nothing runs in the background:

* restore jobs: PENDING -> QUEUED (at restoreScheduledDate = create + 5 s) -> RUNNING (+10 s) -> end;
* flex clusters made through the API: CREATING -> IDLE ``Timings.cluster_create`` (10 s) after the create;
  after a delete (204): DELETING, then gone (404 CLUSTER_NOT_FOUND) ``Timings.cluster_delete`` (40 s) later.
  New clusters run MongoDB 8.0.15; a create answer has no ``tags`` key when no tags were given.

Refusals Atlas does not document, modelled defensively (each says so where it is made): a restore into a
target that is not IDLE (409 TARGET_CLUSTER_NOT_IDLE); a cluster name already taken in the project, a
DELETING cluster's too (409 DUPLICATE_CLUSTER_NAME); deleting a termination-protected cluster (400
CANNOT_TERMINATE_CLUSTER_WHEN_TERMINATION_PROTECTION_ENABLED) or one already DELETING (400
CLUSTER_ALREADY_REQUESTED_DELETION); a create beyond ``max_clusters_per_project`` (400
CLUSTER_LIMIT_REACHED).

Scenarios (``sim.scenario = ...`` at any time; switching restarts the fault counters and rate buckets):
  ok                          job COMPLETED 60 s after restoreScheduledDate
  slow                        job COMPLETED after 30 min
  fail                        job FAILED 45 s after restoreScheduledDate
  never-finishes              job stays RUNNING
  (a job's end is fixed when it is created: by its source's fate if one is set, else by the scenario)
  not-found                   every call naming a cluster answers 404 CLUSTER_NOT_FOUND (listing and
                              creating clusters are served)
  rate-limited                a token bucket per operation and project (``rate_limit``, a RateLimit:
                              capacity 3, 1 token every 10 s, starting empty); a call with no token left
                              gets 429 RATE_LIMITED_TOKEN_BUCKET with Retry-After = seconds to the next
                              refill. A single restore meets a few 429s (Retry-After <= 10 s); a fleet of
                              restores in one project meets them often (about 1 call in 4 at 5 at a time)
  rate-limited-no-header      the first 2 calls of each operation answer 429 without Retry-After
  flaky                       the first 2 calls of each operation answer 503 then 500, then succeed
  token-expired               the next API call's bearer token is refused as expired (401, and it stays
                              expired; a fresh token works); with Digest, its nonce gets one stale=TRUE
                              challenge
  job-vanishes                GET restore job answers 404 RESOURCE_NOT_FOUND
  garbage                     reads (GET) answer 200 with an HTML body instead of JSON
  create-cluster-answer-lost  a flex cluster create is performed, then the connection is cut before the
                              answer: once per cluster name (the next create of that name gets 409)
  cluster-never-idle          clusters created from now on stay CREATING
  delete-fails-twice          the first 2 deletes of each cluster answer 500 and delete nothing; the third
                              works
Faults come before the operation runs: a refused create stores nothing. Successful answers (and errors
past the rate limit) carry RateLimit-Limit / RateLimit-Remaining; outside rate-limited they count buckets
of Atlas's observed size (1200) that never refuse.

Knobs (they combine with any scenario):
  ``rate_limit = RateLimit(capacity, refill_amount, refill_seconds, initial_tokens)``: new bucket figures
  ``token_requests_per_minute``: token endpoint 429s beyond that rate (off by default)
  ``set_target_busy(group, name)``: restore creates into it get 409 (a job through the simulator makes its
      own target busy until it ends)
  ``set_restore_fate(group, source, "COMPLETED" | "FAILED" | "NEVER", duration_seconds=...)``: how jobs
      created from that source from now on end (``None`` forgets it); the FLEET seed sets one
  ``fail_next(operation, fault, count=1, skip=0)`` / ``fail_for(operation, fault, seconds=...)``: precise
      faults for the next calls of one operation (a spec short id, or "token"), or for a while on the clock:
      an error status with or without Retry-After, a cut connection, a lost answer, a non-JSON 200, a
      timeout, a slow answer (simulator/faults.py; ``clear_faults()`` disarms them). ``Call.fault`` names
      the fault that struck a call; ``authorizations`` and ``issued_tokens`` list the credentials seen
  ``drop_connection_after_next_create()``: the next restore-job create is stored, its answer lost
  ``drop_connection_after_next_cluster_create()``: the same for the next flex cluster create
  ``fail_next_deletes(name, n, group_id=None)``: the next n deletes of that cluster answer 500
  ``keep_creating(name, group_id=None, keep=True)``: clusters of that name stay CREATING until released
  ``max_clusters_per_project``: flex cluster creates beyond it are refused (off by default)
  ``timings`` (``Timings``): the durations above; ``cluster_state(group, name)``: a cluster's state now
``Call.status`` is 0 for a dropped connection; ``sim.errors`` lists simulator bugs (stays empty).

Seeds: every simulator starts with ``DEMO`` (the sample events' project) and ``FLEET`` (24 sources with
their scratch targets, and an empty verification project holding one decoy ``frv-`` cluster); see
:class:`DemoSeed` and :class:`FleetSeed` for their names and fixed ids.
"""

from flexrestore.simulator.faults import Fault
from flexrestore.simulator.seed import DEMO, FLEET, DemoSeed, FleetSeed
from flexrestore.simulator.server import AtlasSimulator, Call
from flexrestore.simulator.state import RESTORE_FATES, SCENARIOS, RateLimit, Timings

__all__ = [
    "DEMO",
    "FLEET",
    "RESTORE_FATES",
    "SCENARIOS",
    "AtlasSimulator",
    "Call",
    "DemoSeed",
    "Fault",
    "FleetSeed",
    "RateLimit",
    "Timings",
]
