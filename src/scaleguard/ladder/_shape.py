"""The ladder GPT's shape as a :class:`scaleguard.resources.ModelShape`, and its parameter counts.

The ladder table's ``params`` is the non-embedding count N of Kaplan et al. (2020): every weight
except the token and position embeddings (the output layer shares the token embedding). Laws fit
on N are cleaner for small models, whose embeddings are a large share of all weights.

>>> shape = gpt_shape(layers=2, width=64, heads=4, block_size=64)
>>> non_embedding_params(shape), shape.params
(100096, 120576)
"""

from __future__ import annotations

from scaleguard.resources import ModelShape

__all__ = ["VOCAB_SIZE", "gpt_shape", "non_embedding_params"]

VOCAB_SIZE = 256  # byte-level tokens: every byte value is a token, no tokenizer to train


def gpt_shape(layers: int, width: int, heads: int, block_size: int,
              vocab_size: int = VOCAB_SIZE) -> ModelShape:
    """GPT-2's architecture at this size: 4× MLP, biases, learned positions, tied output layer."""
    return ModelShape(layers=layers, hidden=width, heads=heads, kv_heads=heads, ffn=4 * width,
                      vocab=vocab_size, seq=block_size, gated_ffn=False, tied_embeddings=True,
                      bias=True, learned_positions=True, name=f"gpt-L{layers}-W{width}")


def non_embedding_params(shape: ModelShape) -> int:
    """Parameters outside the embedding tables (blocks and final layer norm): Kaplan's N."""
    return shape.params - shape.embedding_params
