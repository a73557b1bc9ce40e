"""Reading sources, preparing class folders, and feeding them to training."""
