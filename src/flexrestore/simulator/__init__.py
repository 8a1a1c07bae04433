"""A local MongoDB Atlas simulator: a real HTTP server on loopback speaking the flex backup contract."""

from flexrestore.simulator.seed import DEMO, DemoSeed
from flexrestore.simulator.server import AtlasSimulator, Call
from flexrestore.simulator.state import SCENARIOS, Timings

__all__ = ["DEMO", "SCENARIOS", "AtlasSimulator", "Call", "DemoSeed", "Timings"]
