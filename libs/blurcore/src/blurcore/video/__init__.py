"""Video: every face in every frame of a recording anonymized, its sound and timing kept.

``probe`` reads the container header, ``reader`` decodes frames upright, ``tracking`` turns
per-frame detections into per-frame regions (pure), ``writer`` encodes and muxes, and
``pipeline`` runs the two passes that tie them together.
"""
