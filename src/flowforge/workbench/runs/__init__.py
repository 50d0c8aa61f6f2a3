"""Run folders: their configuration, checkpoints, training into them, and loading them."""
