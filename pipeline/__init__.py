"""wine-pipeline: a distributed, containerised batch pipeline that predicts wine ratings."""

__version__ = "0.1.0"

#: Environment variable that sets ``--log-level``; the DAG's runners set it for every step.
LOG_LEVEL_ENV = "WINE_LOG_LEVEL"
