"""Adapters for AWS services, one module per service, each built lazily and cached per container."""
