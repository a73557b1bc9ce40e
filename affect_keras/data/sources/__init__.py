"""Sources: each reads a dataset's own layout and yields `Record`s and `Skipped`s."""
