"""Twins dvx trains itself: the controlled image-vs-video study of seeds 000/001 (WALT) in miniature.

One diffusers video architecture (SVD's ``UNetSpatioTemporalConditionModel``, the tiny-svd config) is
trained twice with everything shared (frozen VAE, data, steps, frames per batch, optimiser, seed): the
**video** twin on clips of F frames, the **image** twin on single frames (F = 1: its temporal layers see one
frame). Checkpoints are plain diffusers folders that ``dvx extract --model twin-svd --weights DIR`` reads.
``dvx twin study`` trains both per seed, extracts them and the untrained network (step 0), probes the
synthetic evaluation world and reports per task with 95% intervals over seeds (docs/twins.md).

One job per module: config (typed settings), data (latent clips), module (the Lightning loss),
checkpoint (diffusers folders every K steps), train (the runner), stats (intervals), study (the study).
"""
