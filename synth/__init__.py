"""Synthetic wine reviews with the schema of the real input, for tests and scale runs.

Not part of the pipeline's product: the ``download`` step and ``wine-pipeline generate``
call it for a ``synthetic:N[:SEED]`` source, tests and benchmarks for data of any size.
"""

from synth.generate import BLOCK_ROWS, generate_csv, generate_frame

__all__ = ["BLOCK_ROWS", "generate_csv", "generate_frame"]
