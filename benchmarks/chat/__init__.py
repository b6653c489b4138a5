"""A minimal host app for the benchmarks: a chat message, as in DESIGN.md section 2."""
