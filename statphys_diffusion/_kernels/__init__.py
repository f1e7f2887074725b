"""Numerical kernels: plain arrays in, arrays out, no validation (the API layer validates)."""
