"""Model shapes: a decoder-only transformer described by its dimensions, and its parameter count.

>>> llama = model_preset("llama-3-8b")
>>> round(llama.params / 1e9, 3)
8.03
>>> llama.head_dim
128
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

from scaleguard.errors import ConfigError, InputError
from scaleguard.units import format_quantity

__all__ = ["MODEL_PRESETS", "ModelShape", "model_from_hf_config", "model_preset"]


@dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer.

    Attributes
    ----------
    layers, hidden, heads, kv_heads, ffn, vocab, seq:
        Number of blocks, model width, query heads, key/value heads (grouped-query attention when
        fewer than ``heads``), MLP inner width, vocabulary size and training sequence length.
    gated_ffn:
        SwiGLU-style MLP with three matrices (Llama) instead of two (GPT).
    tied_embeddings:
        Input embedding and output projection share one matrix.
    bias:
        Linear layers and norms carry biases (GPT-2/3 do, Llama does not).
    learned_positions:
        A learned position-embedding table of ``seq`` rows (GPT) rather than rotary (Llama).
    """

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    seq: int
    gated_ffn: bool = True
    tied_embeddings: bool = False
    bias: bool = False
    learned_positions: bool = False
    name: str = "custom"

    def __post_init__(self) -> None:
        for field_name in ("layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "seq"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InputError(f"{field_name}: expected a positive integer, got {value!r}")
        if self.hidden % self.heads:
            raise InputError(f"heads: {self.heads} heads do not divide hidden={self.hidden}")
        if self.heads % self.kv_heads:
            raise InputError(f"kv_heads: {self.kv_heads} key/value heads do not divide "
                             f"heads={self.heads}")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def attention_params_per_layer(self) -> int:
        """Q and output projections (h x h each) plus K and V (h x kv_heads*head_dim each)."""
        kv_width = self.kv_heads * self.head_dim
        weights = 2 * self.hidden * self.hidden + 2 * self.hidden * kv_width
        biases = (2 * self.hidden + 2 * kv_width) if self.bias else 0
        return weights + biases

    @property
    def mlp_params_per_layer(self) -> int:
        matrices = 3 if self.gated_ffn else 2
        biases = (self.ffn + self.hidden) if self.bias else 0
        return matrices * self.hidden * self.ffn + biases

    @property
    def params_per_layer(self) -> int:
        norms = 2 * self.hidden * (2 if self.bias else 1)  # two norms a block, scale (+ shift)
        return self.attention_params_per_layer + self.mlp_params_per_layer + norms

    @property
    def embedding_params(self) -> int:
        """Token embedding, untied output projection and learned positions."""
        tables = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return tables + (self.seq * self.hidden if self.learned_positions else 0)

    @property
    def params(self) -> int:
        """Total parameter count N."""
        final_norm = self.hidden * (2 if self.bias else 1)
        return self.layers * self.params_per_layer + self.embedding_params + final_norm

    @property
    def largest_layer_params(self) -> int:
        """Parameters of the largest single module (what ZeRO-3 gathers at once)."""
        return max(self.vocab * self.hidden, self.params_per_layer)

    def with_seq(self, seq: int) -> ModelShape:
        """The same model at another sequence length."""
        return replace(self, seq=seq)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "params": self.params, "head_dim": self.head_dim}

    def __repr__(self) -> str:
        return (f"ModelShape({self.name!r}, {format_quantity(self.params, digits=4)} params, "
                f"L={self.layers}, h={self.hidden}, heads={self.heads}/{self.kv_heads}, "
                f"ffn={self.ffn}, vocab={self.vocab}, seq={self.seq})")


def _llama(name: str, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
           vocab: int, seq: int) -> ModelShape:
    return ModelShape(layers, hidden, heads, kv_heads, ffn, vocab, seq, name=name)


def _gpt3(name: str, layers: int, hidden: int, heads: int) -> ModelShape:
    # Brown et al. 2020, Table 2.1: n_ctx 2048, d_ff = 4 d_model, GPT-2 tokenizer (50,257).
    return ModelShape(layers, hidden, heads, heads, 4 * hidden, 50257, 2048, gated_ffn=False,
                      tied_embeddings=True, bias=True, learned_positions=True, name=name)


# Shapes from the models' published config.json files (Meta, Hugging Face hub) and, for GPT-3,
# Brown et al. 2020 Table 2.1 (GPT-3 13B's d_model 5140 is taken as 5120 = 40 x 128).
MODEL_PRESETS: Final[dict[str, ModelShape]] = {
    m.name: m for m in (
        _llama("llama-7b", 32, 4096, 32, 32, 11008, 32000, 2048),
        _llama("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, 4096),
        _llama("llama-2-13b", 40, 5120, 40, 40, 13824, 32000, 4096),
        _llama("llama-2-70b", 80, 8192, 64, 8, 28672, 32000, 4096),
        _llama("llama-3-8b", 32, 4096, 32, 8, 14336, 128256, 8192),
        _llama("llama-3-70b", 80, 8192, 64, 8, 28672, 128256, 8192),
        _llama("llama-3.1-405b", 126, 16384, 128, 8, 53248, 128256, 8192),
        _gpt3("gpt-3-125m", 12, 768, 12),
        _gpt3("gpt-3-350m", 24, 1024, 16),
        _gpt3("gpt-3-760m", 24, 1536, 16),
        _gpt3("gpt-3-1.3b", 24, 2048, 16),
        _gpt3("gpt-3-2.7b", 32, 2560, 32),
        _gpt3("gpt-3-6.7b", 32, 4096, 32),
        _gpt3("gpt-3-13b", 40, 5120, 40),
        _gpt3("gpt-3-175b", 96, 12288, 96),
    )
}


def model_preset(name: str, *, option: str = "model") -> ModelShape:
    """A well-known model's shape by name (``'llama-3-70b'``, ``'gpt-3-175b'``, ...)."""
    key = name.strip().lower()
    if key not in MODEL_PRESETS:
        raise InputError(f"{option}: unknown model {name!r}; known: {', '.join(MODEL_PRESETS)} "
                         "(or give a Hugging Face config.json)")
    return MODEL_PRESETS[key]


def _get(config: dict[str, Any], source: str, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if key in config and config[key] is not None:
            return config[key]
    if default is not None:
        return default
    raise ConfigError(f"{source}: missing field {keys[0]!r} (a decoder-only transformer config)")


def model_from_hf_config(config: str | Path | dict[str, Any], *,
                         name: str | None = None) -> ModelShape:
    """Read a Hugging Face ``config.json`` (Llama/Mistral/Qwen style or GPT-2 style).

    Raises
    ------
    ConfigError
        When the file cannot be read, is not JSON, or lacks a dimension.
    """
    source = "config"
    if not isinstance(config, dict):
        path = Path(config)
        source = str(path)
        from scaleguard.io import load_json, read_text  # lazily: io pulls in pandas

        config = load_json(read_text(path, "model config"), str(path), error=ConfigError)
        if not isinstance(config, dict):
            raise ConfigError(f"{path}: expected a JSON object")
    gpt2_style = "n_embd" in config
    hidden = _get(config, source, "hidden_size", "n_embd", "d_model")
    heads = _get(config, source, "num_attention_heads", "n_head")
    try:
        return ModelShape(
            layers=int(_get(config, source, "num_hidden_layers", "n_layer")),
            hidden=int(hidden),
            heads=int(heads),
            kv_heads=int(_get(config, source, "num_key_value_heads", default=heads)),
            ffn=int(_get(config, source, "intermediate_size", "n_inner", "ffn_dim",
                         default=4 * int(hidden))),
            vocab=int(_get(config, source, "vocab_size")),
            seq=int(_get(config, source, "max_position_embeddings", "n_positions", "n_ctx")),
            gated_ffn=not gpt2_style,
            tied_embeddings=bool(config.get("tie_word_embeddings", gpt2_style)),
            bias=gpt2_style or bool(config.get("attention_bias", False)),
            learned_positions=gpt2_style,
            name=name or str(config.get("_name_or_path") or config.get("model_type") or "custom"),
        )
    except InputError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: a dimension is not an integer ({exc})") from None
