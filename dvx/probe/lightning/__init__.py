"""Trained probe heads with Lightning: cached features in, one head per (T, block) trained side by side.

- :mod:`~dvx.probe.lightning.source`: a picklable handle on a recipe group, opened read-only per process
- :mod:`~dvx.probe.lightning.datamodule`: the LightningDataModule streaming features from the store
- :mod:`~dvx.probe.lightning.heads`, :mod:`~dvx.probe.lightning.slot_attention`: the heads (plain torch)
- :mod:`~dvx.probe.lightning.classification`, :mod:`~dvx.probe.lightning.dense`,
  :mod:`~dvx.probe.lightning.discovery`: one sample builder + LightningModule per head family
- :mod:`~dvx.probe.lightning.metrics`: torchmetrics metrics (mIoU, depth error, FG-ARI, mBO)
- :mod:`~dvx.probe.lightning.trainer`, :mod:`~dvx.probe.lightning.devices`: loggers, checkpoints, data-wait
  timing, devices/strategy

Nothing here imports dvx.extract, diffusers or transformers.
"""
