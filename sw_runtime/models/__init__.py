"""Models the runtime runs end to end (trained and quantized in this repository)."""
