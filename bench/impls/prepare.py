"""Case -> a ready-to-call function and its inputs, built outside the timed region.

`prepare(case)` asks the case's implementation declaration (bench/impls/) to build it: the
model's weights (seeded: `tfimpl.params.init_params(kind, cfg, case.seed)`, cast to the case's
precision), its inputs (`np.random.default_rng(seed+1)` standard normal, or token ids for the
whole model) and a closure `fn()` that runs ONE call of the case's mode (bench/modes/__init__.py). Timing
then calls `fn` many times and nothing else.

The rest of this module names what the declarations already say, for callers that have a case
or an impl name in hand: `backend_of`, `attn_impl_of`, `supports`, `model_config`, `make_inputs`.
"""

from __future__ import annotations

from bench import capabilities, impls
from bench.case import Case
from bench.impls.base import Prepared, Unsupported  # noqa: F401  (re-exported)
from bench.impls.common import make_inputs, make_params, model_config  # noqa: F401
from bench.impls.hf_bert import hf_bert_config  # noqa: F401


def supports(impl: str, block: str) -> bool:
    """True when `impl` has `block` (its declaration's `blocks`)."""
    return capabilities.supports(impl, block)


def backend_of(impl: str) -> str:
    return impls.get(impl).backend


def attn_impl_of(impl: str, block: str | None = None) -> str:
    """How attention is computed (tfimpl.costs' memory-model `attn_impl`), from the impl's
    declaration; without a block, the path of its bare attention block."""
    decl = impls.get(impl)
    return decl.attention_path(block or "attention") or "explicit"


def prepare(case: Case) -> Prepared:
    """Build the callable for `case` (raises Unsupported for combinations that do not exist)."""
    problem = capabilities.check_fields(case, cpus=10 ** 6)
    if problem is not None:
        raise Unsupported(problem[1])
    return impls.get(case.impl).build(case)
