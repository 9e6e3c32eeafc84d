"""Training: crop cache, config, rate-distortion loop with checkpoints, export."""
