"""Video: every face in every frame of a recording anonymized, its sound and timing kept.

``probe`` reads the container header, ``segments`` plans the clip's segments from its packets,
``reader`` decodes a segment's frames upright, ``scan`` holds what detection and tracking learn
(as JSON), ``tracking`` turns per-frame detections into per-frame regions (pure), ``writer``
encodes a segment into a part file, ``joining`` copies the parts and the audio into the output,
and ``pipeline`` runs the steps, for one worker or for several sharing a clip.
"""
