"""The Redis backend, being built (docs/design/cluster.md): one user's state as a unit of work,
loaded and committed atomically, so several replicas can share it. Not selectable yet."""
