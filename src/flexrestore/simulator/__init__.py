"""A local MongoDB Atlas simulator: a real HTTP server on loopback speaking the flex backup contract."""
