"""Local mode: the whole service offline (moto, the real state machine, the Atlas simulator, virtual time)."""
