"""Adapter for the MongoDB Atlas Admin API v2 (flex clusters and their backups)."""
