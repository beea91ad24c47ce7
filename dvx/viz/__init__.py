"""``dvx viz``: pictures of cached features (seed 002's Fig. 1): three-channel PCA and K-means of one block's
features, upsampled to the frames, as a PNG grid (rows = models) and mp4 videos beside the input, with
probe predictions overlaid. Reads the cache and the dataset's frames only: the backbone is never loaded."""
