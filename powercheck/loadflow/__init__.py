"""LV feeder models: loading pandapower networks, per-bus precomputation, caching."""
