"""Developer tools for the pack's own model (not imported by the nodes)."""
