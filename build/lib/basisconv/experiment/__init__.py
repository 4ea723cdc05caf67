"""The paper's experiment (arXiv 2408.06024): CIFAR-10 data, the tensor loader, CIFAR ResNets, the trainer with the
switch schedule, mixed precision, torchrun. Built on ``basisconv.core``; knows nothing of timing or the pipeline.
"""
