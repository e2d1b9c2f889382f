"""The reranker: scores (query, document) pairs, served beside the embedding model.

Two kinds, both loaded with plain `transformers` from disk (`local_files_only`):

- `cross-encoder`: any `AutoModelForSequenceClassification` (BGE reranker,
  ms-marco MiniLM, ...). The pair is the tokenizer's own pair encoding
  (`[CLS] query [SEP] document [SEP]`, segment ids where the model takes
  them), padded on the right; the score is the single logit, or the
  positive class's (label 1) of a two-label model.
- `qwen3`: a Qwen3-Reranker style causal LM. The pair is put in the model
  card's chat prompt (system message, then `<Instruct>: ...\\n<Query>: ...\\n
  <Document>: ...` as the user turn, then the assistant prefix with an empty
  think block), padded on the left so every row ends in the last column; the
  score is log P("yes") over {"no", "yes"} at the last position (the model
  card's probability is its exp).

Only the document side is cut when a pair is over the limit: the query must
leave room for at least one document token, or the request is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import tokenizers
import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
)

from services.embedder.config import EmbedderConfig
from services.embedder.model import (
    Encoded,
    ModelError,
    ModelSource,
    _from_pretrained,
    check_precision,
    load_tokenizer,
    memory_bytes,
    resolve_device,
    resolve_model,
)
from services.embedder.registry import QWEN3_TASK

log = logging.getLogger(__name__)

CROSS_ENCODER = "cross-encoder"
QWEN3 = "qwen3"

# Cross-encoders are trained on pairs of at most 512 tokens (BERT's table);
# longer position tables (e.g. 8192 of bge-reranker-v2-m3) are allowed only
# when RERANKER_MAX_TOKENS asks for them.
CROSS_ENCODER_MAX_TOKENS = 512
# The model card's `max_length`: Qwen3-Reranker's table (40960) would let a
# single pair take a whole batch's budget many times over.
QWEN3_MAX_TOKENS = 8192

# Qwen3-Reranker's prompt, verbatim from its model card.
QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the "
    'Query and the Instruct provided. Note that the answer can only be "yes" or "no".'
    "<|im_end|>\n<|im_start|>user\n"
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = QWEN3_TASK

Scores = npt.NDArray[np.float32]


class QueryTooLong(ValueError):
    """The query alone leaves no room for a document within the model's limit."""

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(
            f"takes {tokens} tokens of the reranker's {limit} with its prompt and special "
            "tokens, leaving no room for a document"
        )
        self.tokens = tokens
        self.limit = limit


@dataclass(frozen=True)
class Reranked:
    """Scores in document order, and which pairs were cut to fit."""

    scores: Scores
    truncated: list[bool]


def qwen3_body(query: str, document: str, instruction: str = QWEN3_INSTRUCTION) -> str:
    """The user turn of Qwen3-Reranker's prompt (`format_instruction` of its model card)."""
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"


class Reranker:
    """A loaded reranker. Not thread-safe: the batcher calls `forward` from one thread."""

    kind = ""

    def __init__(
        self,
        *,
        name: str,
        backend: tokenizers.Tokenizer,
        model: torch.nn.Module,
        max_tokens: int,
        pad_id: int,
        device: torch.device,
        precision: str,
    ) -> None:
        self.name = name
        self.max_tokens = max_tokens
        self.device = device
        self.precision = precision
        self._model = model
        self._pad_id = pad_id
        self._whole = tokenizers.Tokenizer.from_str(backend.to_str())
        self._whole.no_padding()
        self._whole.no_truncation()

    @property
    def memory_bytes(self) -> int:
        return memory_bytes(self._model)

    def encode(self, query: str, documents: Sequence[str]) -> list[Encoded]:
        """One row per document; raises QueryTooLong when no document would fit."""
        raise NotImplementedError

    def forward(self, rows: Sequence[Encoded]) -> Scores:
        """One float32 score per row; higher is more relevant."""
        raise NotImplementedError

    def rerank(self, query: str, documents: Sequence[str]) -> Reranked:
        """Encode and score in one pass, without the batcher (warm-up, tools)."""
        rows = self.encode(query, documents)
        return Reranked(self.forward(rows), [row.truncated for row in rows])

    def _padded(
        self, rows: Sequence[Encoded], *, left: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        longest = max(len(row.ids) for row in rows)
        input_ids = np.full((len(rows), longest), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), longest), dtype=np.int64)
        with_types = rows[0].type_ids is not None
        type_ids = np.zeros((len(rows), longest), dtype=np.int64)
        for index, row in enumerate(rows):
            span = slice(longest - len(row.ids), longest) if left else slice(0, len(row.ids))
            input_ids[index, span] = row.ids
            mask[index, span] = 1
            if row.type_ids is not None:
                type_ids[index, span] = row.type_ids
        return (
            torch.from_numpy(input_ids).to(self.device),
            torch.from_numpy(mask).to(self.device),
            torch.from_numpy(type_ids).to(self.device) if with_types else None,
        )


class CrossEncoder(Reranker):
    """A sequence-classification model over the tokenizer's pair encoding."""

    kind = CROSS_ENCODER

    def __init__(self, *, with_token_type_ids: bool, label: int, **common: Any) -> None:
        super().__init__(**common)
        self._with_token_type_ids = with_token_type_ids
        self._label = label
        # Pairs are cut on the document side only ("only_second").
        self._truncating = tokenizers.Tokenizer.from_str(self._whole.to_str())
        self._truncating.no_padding()
        self._truncating.enable_truncation(max_length=self.max_tokens, strategy="only_second")

    def encode(self, query: str, documents: Sequence[str]) -> list[Encoded]:
        alone = len(self._whole.encode(query, "").ids)
        if alone >= self.max_tokens:
            raise QueryTooLong(alone, self.max_tokens)
        encodings = self._truncating.encode_batch([(query, document) for document in documents])
        return [
            Encoded(
                list(e.ids),
                bool(e.overflowing),  # set exactly when the tokenizer cut the pair
                list(e.type_ids) if self._with_token_type_ids else None,
            )
            for e in encodings
        ]

    def forward(self, rows: Sequence[Encoded]) -> Scores:
        input_ids, mask, type_ids = self._padded(rows, left=False)
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        if type_ids is not None:
            inputs["token_type_ids"] = type_ids
        with torch.inference_mode():
            logits = self._model(**inputs).logits.float()
            scores: Scores = logits[:, self._label].cpu().numpy().astype(np.float32, copy=False)
        return scores


class Qwen3Reranker(Reranker):
    """A causal LM answering "yes" or "no" after Qwen3-Reranker's prompt."""

    kind = QWEN3

    def __init__(self, *, yes_id: int, no_id: int, **common: Any) -> None:
        super().__init__(**common)
        self._yes_id = yes_id
        self._no_id = no_id
        # The model card tokenizes the prefix, the user turn and the suffix
        # separately and concatenates the ids; so does this.
        self._prefix = self._whole.encode(QWEN3_PREFIX, add_special_tokens=False).ids
        self._suffix = self._whole.encode(QWEN3_SUFFIX, add_special_tokens=False).ids
        # Tokens left for the user turn.
        self._budget = self.max_tokens - len(self._prefix) - len(self._suffix)

    def encode(self, query: str, documents: Sequence[str]) -> list[Encoded]:
        head = len(self._whole.encode(qwen3_body(query, ""), add_special_tokens=False).ids)
        if head >= self._budget:
            raise QueryTooLong(head + len(self._prefix) + len(self._suffix), self.max_tokens)
        bodies = self._whole.encode_batch(
            [qwen3_body(query, document) for document in documents], add_special_tokens=False
        )
        # The document comes last in the user turn: cutting the end cuts only it.
        return [
            Encoded(
                [*self._prefix, *body.ids[: self._budget], *self._suffix],
                len(body.ids) > self._budget,
            )
            for body in bodies
        ]

    def forward(self, rows: Sequence[Encoded]) -> Scores:
        # Left padding: every row's last token is in the last column.
        input_ids, mask, _ = self._padded(rows, left=True)
        with torch.inference_mode():
            # Logits of the last position only: the vocabulary projection of
            # every position would be the largest tensor of the pass.
            logits = self._model(
                input_ids=input_ids, attention_mask=mask, logits_to_keep=1, use_cache=False
            ).logits[:, -1, :]
            pair = torch.stack([logits[:, self._no_id], logits[:, self._yes_id]], dim=1).float()
            yes = torch.log_softmax(pair, dim=1)[:, 1]
            scores: Scores = yes.cpu().numpy().astype(np.float32, copy=False)
        return scores


def detect_kind(source: ModelSource, configured: str) -> str:
    """RERANKER_KIND, or for `auto` the kind the model's config.json describes."""
    if configured != "auto":
        return configured
    try:
        model_config = AutoConfig.from_pretrained(str(source.path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"reranker {source.name!r}: cannot read its config.json: {exc}") from exc
    architectures = [str(a) for a in (getattr(model_config, "architectures", None) or [])]
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return CROSS_ENCODER
    if getattr(model_config, "model_type", "") == "qwen3" and any(
        a.endswith("ForCausalLM") for a in architectures
    ):
        return QWEN3
    raise ModelError(
        f"reranker {source.name!r} ({', '.join(architectures) or 'no architectures'}) is "
        "neither a sequence-classification model nor a Qwen3 causal LM; set RERANKER_KIND "
        "to cross-encoder or qwen3"
    )


def reranker_max_tokens(
    kind: str, model_config: Any, tokenizer_limit: int, configured: int | None
) -> int:
    """RERANKER_MAX_TOKENS, else the model's limit (cross-encoders capped at 512,
    Qwen3 at 8192); never past the position table or the tokenizer's limit."""
    limits = [int(getattr(model_config, "max_position_embeddings", 0) or 0)]
    # Tokenizers without a limit report a huge sentinel (about 1e30).
    if tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    known = [limit for limit in limits if limit > 0]
    if configured is not None:
        return min([configured, *known])
    default = CROSS_ENCODER_MAX_TOKENS if kind == CROSS_ENCODER else QWEN3_MAX_TOKENS
    return min([default, *known])


def check_reranker(config: EmbedderConfig) -> tuple[ModelSource, str] | None:
    """The reranker's files and kind; None when none is configured. Fails fast
    (ModelError) on a reranker that is not on disk or whose kind is unclear."""
    if not config.reranker_model:
        return None
    source = resolve_model(config.reranker_model, setting="RERANKER_MODEL")
    return source, detect_kind(source, config.reranker_kind)


def _token_id(tokenizer: Any, token: str, name: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(token_id, int) or token_id == tokenizer.unk_token_id:
        raise ModelError(f"reranker {name!r}: its tokenizer has no {token!r} token")
    return token_id


def load_reranker(config: EmbedderConfig) -> Reranker | None:
    """Loads the configured reranker, None when there is none. Slow: run it off
    the event loop, on the thread that runs the forward passes."""
    found = check_reranker(config)
    if found is None:
        return None
    source, kind = found
    device = resolve_device(config.device)
    precision = config.for_device(device.type).reranker_precision
    assert precision is not None  # for_device fills the embedder's in
    setting = "RERANKER_QUANTIZATION" if config.reranker_quantization else "DEFAULT_QUANTIZATION"
    check_precision(precision, device, setting)

    tokenizer, backend, pad_id = load_tokenizer(source, "reranker")
    auto_class = AutoModelForCausalLM if kind == QWEN3 else AutoModelForSequenceClassification
    model = _from_pretrained(source.path, precision, device, auto_class)
    model_config: Any = model.config
    model_config.use_cache = False
    max_tokens = reranker_max_tokens(
        kind, model_config, int(tokenizer.model_max_length), config.reranker_max_tokens
    )
    common: dict[str, Any] = {
        "name": source.name,
        "backend": backend,
        "model": model,
        "max_tokens": max_tokens,
        "pad_id": int(pad_id or 0),
        "device": device,
        "precision": precision,
    }
    loaded: Reranker
    if kind == CROSS_ENCODER:
        labels = int(model_config.num_labels)
        if labels not in (1, 2):
            raise ModelError(
                f"reranker {source.name!r} has {labels} labels; a cross-encoder needs one "
                "(a relevance logit) or two (not relevant, relevant)"
            )
        loaded = CrossEncoder(
            with_token_type_ids="token_type_ids" in tokenizer.model_input_names,
            label=labels - 1,
            **common,
        )
    else:
        loaded = Qwen3Reranker(
            yes_id=_token_id(tokenizer, "yes", source.name),
            no_id=_token_id(tokenizer, "no", source.name),
            **common,
        )
        if loaded._budget < 2:
            raise ModelError(
                f"reranker {source.name!r}: {max_tokens} tokens leave no room for a pair "
                "after the prompt"
            )
    log.info(
        "loaded reranker %s (%s) from %s: %d tokens, %s on %s, %.1f MiB",
        source.name,
        kind,
        source.path,
        loaded.max_tokens,
        loaded.precision,
        loaded.device,
        loaded.memory_bytes / 2**20,
    )
    return loaded
