"""dvx: a feature cache + probe pipeline for diffusion-model representations of video.

Importing dvx is cheap: no torch, diffusers or transformers are imported here (the registries are lazy).
"""

__version__ = "0.1.0"
