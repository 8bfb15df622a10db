"""The benchmarks behind docs/benchmarks.md, video-benchmarks.md, scaling.md and the load section of
reliability.md: run from the repository root as ``python -m bench.<script>`` (the make targets
``bench``, ``bench-video``, ``bench-scaling`` and ``bench-load`` do).

Each script measures and formats its figures; the words of its page are in ``templates/``.
Nothing is imported here: ``deface_timing`` runs as ``python -m bench.deface_timing`` in deface's
own environment, which holds neither blurcore nor OpenCV's headless build.
"""
