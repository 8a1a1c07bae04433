"""A local MongoDB Atlas simulator: a real HTTP server on loopback speaking the flex backup contract.

    sim = AtlasSimulator(clock=VirtualClock(), scenario="ok"); base_url = sim.start(); ...; sim.stop()

It serves POST /api/oauth/token (service accounts) and HTTP Digest (API keys), the flex cluster, snapshot
and restore-job operations of flex-backup-openapi.yaml, checks every request against that spec (Atlas-shaped
ApiError answers; broken requests listed in ``sim.violations``) and logs every call in ``sim.calls``.
Restore jobs move PENDING -> QUEUED (at restoreScheduledDate = create + 5 s) -> RUNNING (+10 s) -> end,
computed from the clock on each read; nothing runs in the background.

Scenarios (``sim.scenario = ...`` at any time; switching restarts the per-operation fault counters):
  ok                      job COMPLETED 60 s after restoreScheduledDate
  slow                    job COMPLETED after 30 min
  fail                    job FAILED 45 s after restoreScheduledDate
  never-finishes          job stays RUNNING
  (a job's end is fixed by the scenario in force when it is created)
  not-found               every flex call answers 404 CLUSTER_NOT_FOUND
  rate-limited            each operation answers 429 + Retry-After (``retry_after_seconds``, default 7)
                          from its first call until that many seconds have passed on the clock, then is
                          served for good
  rate-limited-no-header  the first 2 calls of each operation answer 429 without Retry-After
  flaky                   the first 2 calls of each operation answer 503 then 500, then succeed
  token-expired           the next API call's bearer token is refused as expired (401, and it stays expired;
                          a fresh token works); with Digest, its nonce gets one stale=TRUE challenge
  job-vanishes            GET restore job answers 404 RESOURCE_NOT_FOUND
  garbage                 reads (GET) answer 200 with an HTML body instead of JSON
Faults come before the operation runs: a refused create stores nothing.

Other knobs: ``retry_after_seconds``, ``token_requests_per_minute`` (token endpoint 429s; off by default),
``set_target_busy(group, name)`` (creates into it get 409; a job through the simulator makes its own
target busy until it ends), ``drop_connection_after_next_create()``, ``Timings`` for the durations.
``Call.status`` is 0 for a dropped connection; ``sim.errors`` lists simulator bugs (stays empty).
"""

from flexrestore.simulator.seed import DEMO, DemoSeed
from flexrestore.simulator.server import AtlasSimulator, Call
from flexrestore.simulator.state import SCENARIOS, Timings

__all__ = ["DEMO", "SCENARIOS", "AtlasSimulator", "Call", "DemoSeed", "Timings"]
