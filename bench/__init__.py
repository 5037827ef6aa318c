"""Benchmarks: each measures paystream next to a ceiling measured in the same
run on the same machine (`paystream bench`)."""
