"""The reproducible pipeline of the arXiv 2408.06024 replication: params and their validation, the DVC layout,
content keys, cached runs, the stages and their notebooks, the estimate, the report, publishing, gpu-check.
The top layer: it may import every other one, and none imports it.
"""
