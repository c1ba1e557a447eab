"""Test helpers: a local server that speaks the Dynaspark protocol."""
