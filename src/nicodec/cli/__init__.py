"""Command-line interface (`nicodec ...`)."""
