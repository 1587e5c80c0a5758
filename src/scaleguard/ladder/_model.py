"""A compact GPT (decoder-only transformer) in PyTorch, in the spirit of nanoGPT.

Pre-norm blocks of causal self-attention and a 4× GELU MLP, learned position embeddings, and an
output layer tied to the token embedding. Shapes in comments: B batch, T time, C width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812  (PyTorch's own convention)

from scaleguard.ladder._shape import VOCAB_SIZE

__all__ = ["GPT", "GPTConfig"]

INIT_STD = 0.02  # GPT-2's initialisation of every linear and embedding weight


@dataclass(frozen=True)
class GPTConfig:
    layers: int
    width: int
    heads: int
    block_size: int
    vocab_size: int = VOCAB_SIZE
    dropout: float = 0.0


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.proj = nn.Linear(config.width, config.width)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        # (B, T, C) -> (B, heads, T, C/heads)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).contiguous().view(b, t, c))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.up = nn.Linear(config.width, 4 * config.width)
        self.down = nn.Linear(4 * config.width, config.width)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.width)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.width)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only transformer over byte tokens.

    >>> from scaleguard.ladder._shape import gpt_shape, non_embedding_params
    >>> model = GPT(GPTConfig(layers=2, width=32, heads=2, block_size=16))
    >>> model.non_embedding_params() == non_embedding_params(gpt_shape(2, 32, 2, 16))
    True
    >>> idx = torch.zeros(3, 16, dtype=torch.long)
    >>> logits, loss = model(idx, idx)
    >>> tuple(logits.shape), loss.item() > 0
    ((3, 16, 256), True)
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.width)
        self.wpe = nn.Embedding(config.block_size, config.width)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.ln_f = nn.LayerNorm(config.width)
        self.lm_head = nn.Linear(config.width, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017), as in GPT-2
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by 1/sqrt(2·layers) so depth does not grow
        # the residual stream's variance.
        for name, param in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(param, mean=0.0, std=INIT_STD / math.sqrt(2 * config.layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)

    def non_embedding_params(self) -> int:
        """Parameters outside the (tied) token and the position embeddings: Kaplan's N."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.wte.weight.numel() - self.wpe.weight.numel()

    def forward(self, idx: torch.Tensor,
                targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        _, t = idx.shape  # (B, T) byte values
        pos = torch.arange(t, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab)
        if targets is None:
            return logits, None
        # Mean cross-entropy in nats per byte.
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss
