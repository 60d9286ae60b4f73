"""A shot from spec to frames: plan, plate, the job, segment, writers, proxies, the worker run."""
