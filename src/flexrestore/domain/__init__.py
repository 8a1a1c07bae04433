"""Plain-Python rules of the service: no AWS, no HTTP. Most tests of it need no mocks."""
