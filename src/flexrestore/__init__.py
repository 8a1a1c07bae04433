"""Atlas Flex Restore: restores MongoDB Atlas Flex snapshots on AWS, exactly once, never silently."""

__version__ = "0.1.0"
