"""The core of basisconv (arXiv 2408.06024) on any model: needs torch and numpy only.

``basis`` (the layer), ``conv_guard`` (oneDNN #6035), ``surgery`` (candidates, convert, fold), ``counting``
(parameters, MACs), ``sensitivity`` (the per-layer search and the selection), ``spectral`` (a data-free baseline),
``evidence`` (statistics). Imports nothing above it; the package's public names come from here.
"""
