"""Pure numeric power-quality kernels (arrays in, arrays out, numba).

Nothing in this package does I/O, touches pandapower or knows about the
pydantic models: callers convert to numpy arrays first.
"""
