"""The luigi DAG and the runners that start each step (local subprocess or container)."""
