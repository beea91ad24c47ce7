"""Stage 2: probes that read features (label propagation, trained heads) and the metrics that score them.

Importing this package is cheap; each module imports torch/scipy itself.
"""
