"""wine-pipeline: a distributed, containerised batch pipeline that predicts wine ratings."""

__version__ = "0.1.0"
