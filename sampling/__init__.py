"""Pure statistics for sample design: sizes, allocation, selection, weights.

Never imports ``survey``, an ORM or a web framework, and does no I/O: numpy arrays and frozen
dataclasses in, frozen dataclasses out.
"""
