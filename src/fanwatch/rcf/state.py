"""Placeholder; replaced by the versioned mapper."""
