"""``dvx report``: tables (seed 002's Table 2) and T x block heatmaps (Table 3) from probe results records."""
