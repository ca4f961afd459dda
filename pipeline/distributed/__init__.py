"""The distributed layer: the only part of the package that uses Dask.

It connects a step to a cluster or starts a LocalCluster (:mod:`.cluster`),
sends models and tasks to the workers, and drives what needs the cluster as
a whole: a CSV read as blocks of whole records (:mod:`.csv_blocks`), the
linear models' passes over the hashed blocks (:mod:`.sgd`), LightGBM's Dask
interface (:mod:`.gbm`) and the candidate models fitted from the hashed rows
(:mod:`.fit`).  The tasks the workers run are plain functions of
DataFrames and arrays from the core modules; the steps call this layer and
import no Dask themselves.
"""
