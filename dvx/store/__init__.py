"""The feature store: a Zarr v3 hierarchy keyed by (dataset, model@recipe-fingerprint, T, block).

See docs/store.md for the layout and the commit protocol.
"""
