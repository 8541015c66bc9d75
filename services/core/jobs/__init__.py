"""The job aggregate: pure state and decisions, and its store (log + projection)."""
