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

__all__ = ["MODEL_PRESETS", "LatentAttention", "ModelShape", "model_from_hf_config", "model_preset"]


@dataclass(frozen=True)
class LatentAttention:
    """Multi-head latent attention (DeepSeek-V2/V3): queries and keys/values through low ranks.

    ``q_rank`` 0 means queries are projected directly (no low-rank query path). The KV cache
    holds only the ``kv_rank`` latent and the shared rotary key per token and layer.
    """

    q_rank: int
    kv_rank: int
    rope_dim: int
    nope_dim: int
    v_dim: int

    def __post_init__(self) -> None:
        for field_name in ("kv_rank", "rope_dim", "nope_dim", "v_dim"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InputError(f"{field_name}: expected a positive integer, got {value!r}")
        if isinstance(self.q_rank, bool) or not isinstance(self.q_rank, int) or self.q_rank < 0:
            raise InputError(f"q_rank: expected a non-negative integer, got {self.q_rank!r}")

    def params(self, hidden: int, heads: int) -> int:
        qk = self.nope_dim + self.rope_dim
        query = (hidden * self.q_rank + self.q_rank + self.q_rank * heads * qk if self.q_rank
                 else hidden * heads * qk)
        key_value = (hidden * (self.kv_rank + self.rope_dim) + self.kv_rank
                     + self.kv_rank * heads * (self.nope_dim + self.v_dim))
        return query + key_value + heads * self.v_dim * hidden


@dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer, dense or mixture-of-experts.

    Attributes
    ----------
    layers, hidden, heads, kv_heads, ffn, vocab, seq:
        Number of blocks, model width, query heads, key/value heads (grouped-query attention when
        fewer than ``heads``), MLP inner width (of the dense layers), vocabulary size and training
        sequence length.
    gated_ffn:
        SwiGLU-style MLP with three matrices (Llama) instead of two (GPT).
    tied_embeddings:
        Input embedding and output projection share one matrix.
    bias:
        Linear layers and norms carry biases (GPT-2/3 do, Llama does not).
    learned_positions:
        A learned position-embedding table of ``seq`` rows (GPT) rather than rotary (Llama).
    experts, experts_per_token, expert_ffn:
        Mixture-of-experts: routed experts per MoE layer, how many each token visits, and each
        expert's MLP width. ``experts`` 0 is a dense model.
    shared_ffn:
        Combined width of the shared experts every token visits (DeepSeek, Qwen-MoE); 0: none.
    dense_layers:
        Leading layers that keep a dense MLP of width ``ffn`` (DeepSeek-V3's first three).
    latent:
        Multi-head latent attention instead of grouped-query attention (DeepSeek).
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
    experts: int = 0
    experts_per_token: int = 0
    expert_ffn: int = 0
    shared_ffn: int = 0
    dense_layers: int = 0
    latent: LatentAttention | None = None

    def __post_init__(self) -> None:
        for field_name in ("layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "seq"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InputError(f"{field_name}: expected a positive integer, got {value!r}")
        for field_name in ("experts", "experts_per_token", "expert_ffn", "shared_ffn",
                           "dense_layers"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{field_name}: expected a non-negative integer, got {value!r}")
        if self.hidden % self.heads:
            raise InputError(f"heads: {self.heads} heads do not divide hidden={self.hidden}")
        if self.heads % self.kv_heads:
            raise InputError(f"kv_heads: {self.kv_heads} key/value heads do not divide "
                             f"heads={self.heads}")
        if self.experts:
            if not 1 <= self.experts_per_token <= self.experts:
                raise InputError(f"experts_per_token: expected 1 to experts={self.experts}, "
                                 f"got {self.experts_per_token}")
            if self.expert_ffn <= 0:
                raise InputError("expert_ffn: a mixture-of-experts model needs the experts' "
                                 "MLP width")
            if self.dense_layers >= self.layers:
                raise InputError(f"dense_layers: {self.dense_layers} leaves no MoE layer of "
                                 f"{self.layers}")
        elif self.experts_per_token or self.expert_ffn or self.shared_ffn or self.dense_layers:
            raise InputError("experts: experts_per_token, expert_ffn, shared_ffn and "
                             "dense_layers describe a mixture of experts; give experts too")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.is_moe else 0

    @property
    def qk_head_dim(self) -> int:
        """Width of one head's query and key (what QK^T contracts over)."""
        return self.latent.nope_dim + self.latent.rope_dim if self.latent else self.head_dim

    @property
    def v_head_dim(self) -> int:
        return self.latent.v_dim if self.latent else self.head_dim

    @property
    def attention_params_per_layer(self) -> int:
        """Q and output projections (h x h each) plus K and V (h x kv_heads*head_dim each)."""
        if self.latent is not None:
            return self.latent.params(self.hidden, self.heads)
        kv_width = self.kv_heads * self.head_dim
        weights = 2 * self.hidden * self.hidden + 2 * self.hidden * kv_width
        biases = (2 * self.hidden + 2 * kv_width) if self.bias else 0
        return weights + biases

    def _mlp_params(self, width: int) -> int:
        matrices = 3 if self.gated_ffn else 2
        biases = (width + self.hidden) if self.bias else 0
        return matrices * self.hidden * width + biases

    @property
    def mlp_params_per_layer(self) -> int:
        """A dense layer's MLP."""
        return self._mlp_params(self.ffn)

    def moe_params_per_layer(self, experts: int) -> int:
        """An MoE layer's MLP with ``experts`` routed experts, the shared ones and the router."""
        shared = self._mlp_params(self.shared_ffn) if self.shared_ffn else 0
        return experts * self._mlp_params(self.expert_ffn) + shared + self.experts * self.hidden

    @property
    def expert_params(self) -> int:
        """All routed experts' weights (what expert parallelism splits over ``ep``)."""
        return self.moe_layers * self.experts * self._mlp_params(self.expert_ffn)

    @property
    def norm_params_per_layer(self) -> int:
        return 2 * self.hidden * (2 if self.bias else 1)  # two norms a block, scale (+ shift)

    @property
    def params_per_layer(self) -> int:
        """The largest block: an MoE block with every expert, else a dense one."""
        mlp = self.moe_params_per_layer(self.experts) if self.is_moe else self.mlp_params_per_layer
        return self.attention_params_per_layer + mlp + self.norm_params_per_layer

    @property
    def embedding_params(self) -> int:
        """Token embedding, untied output projection and learned positions."""
        tables = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return tables + (self.seq * self.hidden if self.learned_positions else 0)

    def _count(self, experts: int) -> int:
        final_norm = self.hidden * (2 if self.bias else 1)
        blocks = self.layers * (self.attention_params_per_layer + self.norm_params_per_layer)
        dense = (self.layers - self.moe_layers) * self.mlp_params_per_layer
        moe = self.moe_layers * self.moe_params_per_layer(experts) if self.is_moe else 0
        return blocks + dense + moe + self.embedding_params + final_norm

    @property
    def params(self) -> int:
        """Total parameter count N (every expert): what memory holds."""
        return self._count(self.experts)

    @property
    def active_params(self) -> int:
        """Parameters one token passes through (``experts_per_token`` experts): what FLOPs see.

        Embeddings are included, as Mistral (Mixtral 12.9B) and DeepSeek (V3 37B) count them.
        """
        return self._count(self.experts_per_token) if self.is_moe else self.params

    @property
    def largest_layer_params(self) -> int:
        """Parameters of the largest single module (what ZeRO-3 gathers at once)."""
        return max(self.vocab * self.hidden, self.params_per_layer)

    def with_seq(self, seq: int) -> ModelShape:
        """The same model at another sequence length."""
        return replace(self, seq=seq)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "params": self.params, "active_params": self.active_params,
                "head_dim": self.head_dim}

    def describe(self) -> str:
        """The shape in words, for people: ``llama-3-8b: 8.03B parameters, 32 layers, ...``."""
        return (f"{self.name}: {format_quantity(self.params, digits=3)} parameters, "
                f"{self.layers} layers, hidden {self.hidden}, {self.heads} heads "
                f"({self.kv_heads} key/value), FFN {self.ffn}, vocabulary {self.vocab}, "
                f"sequence {self.seq}")

    def __repr__(self) -> str:
        moe = (f", experts={self.experts} (top-{self.experts_per_token}, "
               f"{format_quantity(self.active_params, digits=3)} active)" if self.is_moe else "")
        return (f"ModelShape({self.name!r}, {format_quantity(self.params, digits=4)} params, "
                f"L={self.layers}, h={self.hidden}, heads={self.heads}/{self.kv_heads}, "
                f"ffn={self.ffn}, vocab={self.vocab}, seq={self.seq}{moe})")


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


def _moe_fields(config: dict[str, Any], source: str) -> dict[str, Any]:
    """Mixture-of-experts fields of a Mixtral, DeepSeek-V2/V3 or Qwen-MoE ``config.json``."""
    experts = _get(config, source, "num_local_experts", "n_routed_experts", "num_experts",
                   default=0)
    if not experts:
        return {}
    expert_ffn = _get(config, source, "moe_intermediate_size", "intermediate_size")
    shared = int(config.get("shared_expert_intermediate_size") or 0)
    if not shared and config.get("n_shared_experts"):
        shared = int(config["n_shared_experts"]) * int(expert_ffn)
    if int(config.get("decoder_sparse_step") or 1) != 1 or config.get("mlp_only_layers"):
        raise ConfigError(f"{source}: MoE layers interleaved with dense ones are not modelled "
                          "(decoder_sparse_step 1 and no mlp_only_layers)")
    return {"experts": int(experts),
            "experts_per_token": int(_get(config, source, "num_experts_per_tok")),
            "expert_ffn": int(expert_ffn), "shared_ffn": shared,
            "dense_layers": int(config.get("first_k_dense_replace") or 0)}


def _latent(config: dict[str, Any], source: str) -> LatentAttention | None:
    if not config.get("kv_lora_rank"):
        return None
    return LatentAttention(q_rank=int(config.get("q_lora_rank") or 0),
                           kv_rank=int(config["kv_lora_rank"]),
                           rope_dim=int(_get(config, source, "qk_rope_head_dim")),
                           nope_dim=int(_get(config, source, "qk_nope_head_dim")),
                           v_dim=int(_get(config, source, "v_head_dim")))


def model_from_hf_config(config: str | Path | dict[str, Any], *,
                         name: str | None = None) -> ModelShape:
    """Read a Hugging Face ``config.json``: Llama/Mistral/Qwen style, GPT-2 style, or a mixture
    of experts (Mixtral, DeepSeek-V2/V3 with latent attention, Qwen-MoE).

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
            latent=_latent(config, source),
            **_moe_fields(config, source),
        )
    except ConfigError:
        raise
    except InputError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf)
        raise ConfigError(f"{source}: a dimension is not an integer ({exc})") from None
