"""Performance measurement (arXiv 2408.06024's forward/backward time claims): timing of layers and models,
execution forms, factorized peers at equal budget, ONNX export. Built on ``core`` and ``experiment``.
"""
