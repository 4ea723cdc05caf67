"""The core of basisconv (arXiv 2408.06024) on any model: needs torch and numpy only.

``basis`` (the layer), ``conv_guard`` (oneDNN #6035), ``surgery`` (conv records, convert, fold), ``counting``
(parameters, MACs, a layer's saving), ``sensitivity`` (candidates, proxies, the per-layer sweep), ``selection``
(the budgeted knapsack, matched subsets), ``switch`` (conversion mid-training), ``spectral`` (a data-free
baseline), ``evidence`` (statistics). Imports nothing above it; the package's public names come from here.
"""
