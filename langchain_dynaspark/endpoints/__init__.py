"""The surfaces of the Dynaspark service, one module each."""
