"""tfimpl: a Transformer from first principles, twice (NumPy and PyTorch), mirrored block by block.

    tfimpl.config    ModelConfig and the named presets (bert-base, transformer-base, ...)
    tfimpl.params    one parameter layout (named arrays, seeded) shared by both backends
    tfimpl.loaders   torch.nn / HuggingFace state dicts -> that layout
    tfimpl.numpy     the NumPy implementation
    tfimpl.torch     the PyTorch implementation (same files, same names)
    tfimpl.costs     the analytic cost model: parameters, FLOPs, memory

Nothing here knows about benchmarking; importing `tfimpl` imports neither torch nor numpy backends.
"""
