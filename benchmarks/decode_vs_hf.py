"""Cached decode: tfimpl.torch's GPT-2 against HuggingFace GPT2LMHeadModel, same weights.

    python benchmarks/decode_vs_hf.py                       # fp32, batch 1, GPT-2 small, 2 threads
    python benchmarks/decode_vs_hf.py --contexts 128 512 1000 --threads 1 --rounds 9

Run it on an otherwise idle machine: the numbers are per-step wall times. For each context n the
prompt (n tokens) is prefilled once, then one decode step (the (n+1)-th token against the cache)
is timed again and again, the cache rolled back to n tokens between steps (ours: its length;
HF: DynamicCache.crop(-1), after which its next update concatenates n + 1 positions as it does in
real generation). The implementations alternate within each round so drift hits all alike;
each round takes the median of --steps steps, and the report is the median over rounds with
the range. The ratio is HF's time over ours (> 1: ours is faster).

    ours       tfimpl.torch.gpt.decode_step, attn_impl explicit and sdpa, preallocated cache, in the
               parameter layout and in pack_for_inference's (fused QKV, (in, out) weights)
    HF         GPT2LMHeadModel(token, cache=..., use_cache=True, logits_to_keep=1), a manual
               loop with its past key values (what `generate` runs per step), eager and sdpa
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def build(threads: int, vocab: int, positions: int):
    import numpy as np
    import torch
    import transformers

    from tfimpl import loaders
    from tfimpl import params as P
    from tfimpl.config import PRESETS

    torch.set_num_threads(threads)
    cfg = PRESETS["gpt2"].replace(vocab_size=vocab, max_position=positions)
    params = P.init_params("gpt", cfg, seed=0, dtype=np.float32)
    ours = P.to_torch(params, torch.float32)
    hf = {}
    for attn in ("eager", "sdpa"):
        config = transformers.GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=768,
                                         n_layer=12, n_head=12, resid_pdrop=0.0, embd_pdrop=0.0,
                                         attn_pdrop=0.0, attn_implementation=attn)
        model = transformers.GPT2LMHeadModel(config).eval()
        model.load_state_dict(loaders.to_hf_gpt2_state_dict(params))
        hf[attn] = model
    return cfg, ours, hf


def steppers(cfg, ours, hf, ids):
    """name -> a function doing one decode step at context n (the cache rolled back after)."""
    import torch

    import tfimpl.torch.gpt as tg

    n = ids.shape[1] - 1
    out = {}
    packed = tg.pack_for_inference(ours)
    for label, weights in (("", ours), ("packed-", packed)):
        for impl in ("explicit", "sdpa"):
            _, cache = tg.prefill(weights, ids[:, :n], cfg, capacity=n + 1, attn_impl=impl)

            def ours_step(cache=cache, impl=impl, weights=weights):
                logits, c = tg.decode_step(weights, ids[:, n], cfg, cache, attn_impl=impl)
                c.length = n
                return logits
            out[f"ours-{label}{impl}"] = ours_step
    for attn, model in hf.items():
        hf_cache = model(ids[:, :n], use_cache=True, logits_to_keep=1).cache

        def hf_step(model=model, hf_cache=hf_cache):
            logits = model(ids[:, n:n + 1], cache=hf_cache, use_cache=True, logits_to_keep=1).logits
            hf_cache.crop(-1)                                      # back to n tokens
            return logits
        out[f"hf-{attn}"] = hf_step
    with torch.inference_mode():                                  # same answer, checked once
        ref = out["hf-sdpa"]()[:, -1]
        for name, fn in out.items():
            got = fn().reshape(ref.shape)
            err = float((got - ref).abs().max() / ref.abs().max())
            if err > 1e-4:
                raise SystemExit(f"error: {name} disagrees with hf-sdpa (max rel {err:.1e})")
    return out


def time_round(fn, steps: int) -> float:
    samples = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[128, 512, 1000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--vocab", type=int, default=50257)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    positions = max(1024, max(args.contexts) + 1)
    cfg, ours, hf = build(args.threads, args.vocab, positions)
    print(f"GPT-2 small width (D=768, L=12, V={args.vocab}), fp32, batch 1, "
          f"{torch.get_num_threads()} threads, {args.rounds} rounds x {args.steps} steps")
    print(f"{'context':>8}  {'impl':<22} {'ms/step (median)':>17} {'range':>17}  HF/ours")
    g = torch.Generator().manual_seed(0)
    for n in args.contexts:
        ids = torch.randint(0, args.vocab, (1, n + 1), generator=g)
        with torch.inference_mode():
            fns = steppers(cfg, ours, hf, ids)
            for fn in fns.values():                                # warm-up
                time_round(fn, 3)
            rounds = {name: [] for name in fns}
            for _ in range(args.rounds):
                for name, fn in fns.items():
                    rounds[name].append(time_round(fn, args.steps))
        med = {name: statistics.median(v) for name, v in rounds.items()}
        best_hf = min(med["hf-eager"], med["hf-sdpa"])
        for name, values in rounds.items():
            ratio = f"{best_hf / med[name]:.2f}" if name.startswith("ours") else ""
            print(f"{n:>8}  {name:<22} {1e3 * med[name]:>17.2f} "
                  f"{1e3 * min(values):>8.2f}-{1e3 * max(values):<8.2f}  {ratio}")
    print("HF/ours: the faster of HF's eager and sdpa over ours (> 1 means ours is faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
