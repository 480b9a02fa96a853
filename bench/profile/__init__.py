"""Per-step profile of a forward: measured time beside analytic FLOPs and bytes (a roofline).

    spec          what to profile (ProfileSpec, make_spec) and its seeded weights and inputs
    steps_torch   tfimpl.torch's forward, one record_function range per step
    steps_numpy   tfimpl.numpy's forward, one timed step at a time
    timing        torch.profiler / step timers; the whole block's unprofiled median
    memory        memory per step: torch's profiler memory events, memory-profiler's lines
    roofline      achieved GFLOP/s and GB/s, % of each ceiling, the verdict rule, the plot
    report        profile.csv / profile.json / profile.md with the claims

`python -m bench profile` (bench.commands.profile) puts them together.
"""
