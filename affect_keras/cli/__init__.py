"""Command-line entry points; the scripts at the repository root and the console scripts call these."""
