"""Segments: `segments.yaml` parsed (`model`), compiled to SQL (`compile`), computed and
snapshotted (`engine`), plus RFM and lifecycle (`analytics`)."""
