"""The bottom layer: weight files (safetensors, sha256) and the checkpoint catalogue. Imports no torch."""
