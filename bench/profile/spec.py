"""What one profile measures (`ProfileSpec`), checked once, and its seeded weights and inputs.

The target is a BERT preset (the whole model: embeddings, cfg.n_layers encoder layers, pooler)
or a block name (attention, mha, ffn, encoder_layer, encoder) at the width of `--preset`
(default bert-base). Weights are `tfimpl.params.init_params(kind, cfg, seed)` and inputs
`np.random.default_rng(seed + 1)`, the same numbers `bench run` uses for a case; both are made
in float64 and then cast to the precision, so every backend and precision sees the same values.

Tests: tests/profile/test_profile.py, tests/profile/test_profile_steps.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import precision
from bench.machine.peak import default_threads
from tfimpl.config import PRESETS, ModelConfig
from tfimpl.params import init_params

IMPLS = {"torch": ("torch", "explicit"), "torch-sdpa": ("torch", "sdpa"),
         "numpy": ("numpy", "explicit")}
BLOCKS = ("attention", "mha", "ffn", "encoder_layer", "encoder")
PARAM_KIND = {"attention": "attention", "mha": "mha", "ffn": "ffn",
              "encoder_layer": "encoder_layer", "encoder": "encoder", "model": "bert"}
PRECISIONS = {"numpy": ("fp64", "fp32"),
              "torch": ("fp64", "fp32", "bf16", "amp-bf16", "fp16", "amp-fp16", "tf32")}
CUDA_ONLY = ("fp16", "amp-fp16", "tf32")       # fp16 on a CPU is emulated (see bench.machine.peak)
DEFAULT_PRESET = "bert-base"


class SpecError(ValueError):
    """A bad option: str(e) is one line naming the option, the value and what is allowed."""

@dataclass(frozen=True)
class ProfileSpec:
    target: str               # as given: a preset (whole model) or a block name
    block: str                # "model" or one of BLOCKS
    preset: str
    cfg: ModelConfig
    impl: str = "torch"
    batch: int = 1
    seq_len: int = 128
    precision: str = "fp32"
    device: str = "cpu"
    threads: int = 1
    repeats: int = 5
    seed: int = 0

    @property
    def backend(self) -> str:
        return IMPLS[self.impl][0]

    @property
    def attn_impl(self) -> str:
        return IMPLS[self.impl][1]

    def label(self) -> str:
        what = self.preset if self.block == "model" else f"{self.block} ({self.preset} width)"
        return (f"{what}, {self.impl}, {self.precision}, B={self.batch}, T={self.seq_len}, "
                f"{self.threads} thread(s), {self.device}")

    def to_dict(self) -> dict:
        return {"target": self.target, "block": self.block, "preset": self.preset,
                "impl": self.impl, "backend": self.backend, "attn_impl": self.attn_impl,
                "batch": self.batch, "seq_len": self.seq_len, "precision": self.precision,
                "device": self.device, "threads": self.threads, "repeats": self.repeats,
                "seed": self.seed, "d_model": self.cfg.d_model, "n_heads": self.cfg.n_heads,
                "d_ff": self.cfg.d_ff, "n_layers": self.cfg.n_layers,
                "activation": self.cfg.activation}


def _profilable_presets() -> tuple[str, ...]:
    """BERT-shaped presets: encoder-only, post-norm, no final norm (tfimpl's bert())."""
    return tuple(name for name, cfg in PRESETS.items()
                 if cfg.n_decoder_layers == 0 and not cfg.norm_first and not cfg.final_norm
                 and not getattr(cfg, "decoder_only", False))


def _positive(option: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"{option}: expected an integer >= 1, got {value!r}")
    return value


def make_spec(target: str, preset: str | None = None, impl: str = "torch", batch: int = 1,
              seq_len: int = 128, precision: str = "fp32", device: str = "cpu",
              threads: int | None = None, repeats: int = 5, seed: int = 0) -> ProfileSpec:
    """Check every option (SpecError, one line) and resolve the target to (block, cfg)."""
    import dataclasses


    presets = _profilable_presets()
    if target in presets:
        if preset not in (None, target):
            raise SpecError(f"--preset: {target} is a whole model; --preset applies to a block")
        block, preset = "model", target
    elif target in BLOCKS:
        preset = preset or DEFAULT_PRESET
        if preset not in presets:
            raise SpecError(f"--preset: unknown {preset!r}; allowed: {', '.join(presets)}")
        block = target
    else:
        raise SpecError(f"MODEL_OR_BLOCK: unknown {target!r}; allowed: a model "
                        f"({', '.join(presets)}) or a block ({', '.join(BLOCKS)})")
    if impl not in IMPLS:
        raise SpecError(f"--impl: unknown {impl!r}; allowed: {', '.join(IMPLS)}")
    backend = IMPLS[impl][0]
    if precision not in PRECISIONS[backend]:
        raise SpecError(f"--precision: {impl} does not run {precision!r}; allowed: "
                        f"{', '.join(PRECISIONS[backend])}")
    if device not in ("cpu", "cuda"):
        raise SpecError(f"--device: expected cpu or cuda, got {device!r}")
    if device == "cuda" and backend == "numpy":
        raise SpecError("--device: numpy runs on cpu only")
    if device == "cpu" and precision in CUDA_ONLY:
        raise SpecError(f"--precision: {precision} is run on cuda only (on a CPU it is emulated "
                        f"or a CUDA setting); allowed on cpu: fp64, fp32, bf16, amp-bf16")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SpecError("--device: cuda requested but torch.cuda.is_available() is False")
    _positive("--batch", batch)
    _positive("--seq-len", seq_len)
    _positive("--repeats", repeats)
    threads = default_threads() if threads is None else _positive("--threads", threads)
    if threads > default_threads():
        raise SpecError(f"--threads: {threads} > the {default_threads()} CPU(s) this process may use")
    cfg = PRESETS[preset]
    if block == "model" and seq_len > cfg.max_position:
        raise SpecError(f"--seq-len: {seq_len} > {preset}'s {cfg.max_position} positions")
    cfg = dataclasses.replace(cfg, max_position=max(cfg.max_position, seq_len))
    return ProfileSpec(target=target, block=block, preset=preset, cfg=cfg, impl=impl,
                       batch=batch, seq_len=seq_len, precision=precision, device=device,
                       threads=threads, repeats=repeats, seed=seed)


def float64_params(spec: ProfileSpec) -> dict:
    return init_params(PARAM_KIND[spec.block], spec.cfg, spec.seed)


def float64_inputs(spec: ProfileSpec) -> dict:
    """q, k, v (B, H, T, d_k) for attention, token ids (B, T) for the model, else x (B, T, D)."""
    import numpy as np

    rng = np.random.default_rng(spec.seed + 1)
    b, t, d, h = spec.batch, spec.seq_len, spec.cfg.d_model, spec.cfg.n_heads
    if spec.block == "attention":
        shape = (b, h, t, d // h)                                     # (B, H, T, d_k)
        return {name: rng.standard_normal(shape) for name in ("q", "k", "v")}
    if spec.block == "model":
        return {"input_ids": rng.integers(0, spec.cfg.vocab_size, size=(b, t), dtype=np.int64)}
    return {"x": rng.standard_normal((b, t, d))}                     # (B, T, D)


def cast(spec: ProfileSpec, arrays: dict) -> dict:
    """Arrays at the spec's storage precision on its device (integers moved, never cast)."""
    return precision.cast_params(arrays, spec.precision, spec.backend, spec.device)


def widths(spec: ProfileSpec) -> tuple[int, int]:
    """(activation bytes per element, weight bytes per element) for tfimpl.costs.bytes."""
    p = precision.get(spec.precision)
    storage = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}[p.storage]
    return p.bytes_per_element, storage
