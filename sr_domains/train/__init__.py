"""Training: data, degradations, losses, trainer (needs the [train] extra)."""
