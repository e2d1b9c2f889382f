"""What the embedder must know about a model beyond its weights.

Pooling, normalisation, token limit, dimensions, padding side, prompts for
queries and documents, and Matryoshka support. Known models are listed in
`KNOWN_MODELS`; any other model is read from its sentence-transformers files
(`modules.json`, the Pooling module's `config.json`,
`sentence_bert_config.json`, `config_sentence_transformers.json`) when it has
them, and is otherwise mean-pooled and normalised, with the tokenizer's
padding side and limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POOLINGS = ("mean", "cls", "last")
TEXT = "{text}"
TASK = "{task}"


class SpecError(ValueError):
    """A model's configuration cannot be served; the message says why."""


@dataclass(frozen=True)
class ModelSpec:
    """How to embed with one model. `None` fields come from the model's files."""

    pooling: str
    normalize: bool = True
    max_tokens: int | None = None
    dimensions: int | None = None
    padding_side: str | None = None
    # Templates around the text: `{text}` is the input, `{task}` the
    # request's task (or `default_task`).
    query_template: str = TEXT
    document_template: str = TEXT
    default_task: str = ""
    # Matryoshka: any width in [min_dimensions, dimensions]; None when unsupported.
    min_dimensions: int | None = None
    # Pinned sha256 of model.safetensors, for models we ship.
    sha256: str | None = None

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise SpecError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.padding_side not in (None, "left", "right"):
            raise SpecError(f"padding side must be left or right, got {self.padding_side!r}")
        for template in (self.query_template, self.document_template):
            if template.count(TEXT) != 1:
                raise SpecError(f"a prompt template needs exactly one {TEXT}: {template!r}")
        if TASK in self.document_template:
            raise SpecError("document prompts take no task")

    @property
    def takes_task(self) -> bool:
        return TASK in self.query_template

    def prompt(self, query: bool, task: str = "") -> tuple[str, str]:
        """The (prefix, suffix) put around a text of this kind."""
        template = self.query_template if query else self.document_template
        template = template.replace(TASK, task or self.default_task)
        prefix, suffix = template.split(TEXT)
        return prefix, suffix


MINILM = "sentence-transformers/all-MiniLM-L6-v2"

QWEN3_TASK = "Given a web search query, retrieve relevant passages that answer the query"


def _qwen3(dimensions: int) -> ModelSpec:
    # Left padding so the last position of every row is its last token;
    # queries carry an instruction, documents are embedded bare.
    return ModelSpec(
        pooling="last",
        max_tokens=32768,
        dimensions=dimensions,
        padding_side="left",
        query_template="Instruct: {task}\nQuery:{text}",
        default_task=QWEN3_TASK,
        min_dimensions=32,
    )


def _bge(dimensions: int) -> ModelSpec:
    return ModelSpec(
        pooling="cls",
        max_tokens=512,
        dimensions=dimensions,
        query_template="Represent this sentence for searching relevant passages: {text}",
    )


def _e5(dimensions: int) -> ModelSpec:
    return ModelSpec(
        pooling="mean",
        max_tokens=512,
        dimensions=dimensions,
        query_template="query: {text}",
        document_template="passage: {text}",
    )


KNOWN_MODELS: dict[str, ModelSpec] = {
    MINILM: ModelSpec(
        pooling="mean",
        max_tokens=256,
        dimensions=384,
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    "sentence-transformers/all-mpnet-base-v2": ModelSpec(
        pooling="mean", max_tokens=384, dimensions=768
    ),
    "BAAI/bge-small-en-v1.5": _bge(384),
    "BAAI/bge-base-en-v1.5": _bge(768),
    "BAAI/bge-large-en-v1.5": _bge(1024),
    "intfloat/e5-small-v2": _e5(384),
    "intfloat/e5-base-v2": _e5(768),
    "intfloat/e5-large-v2": _e5(1024),
    "intfloat/multilingual-e5-small": _e5(384),
    "intfloat/multilingual-e5-base": _e5(768),
    "intfloat/multilingual-e5-large": _e5(1024),
    "Qwen/Qwen3-Embedding-0.6B": _qwen3(1024),
    "Qwen/Qwen3-Embedding-4B": _qwen3(2560),
    "Qwen/Qwen3-Embedding-8B": _qwen3(4096),
}


def _read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as file:
        return json.load(file)


def _sentence_transformers_spec(model_dir: Path) -> ModelSpec:
    """A spec from the sentence-transformers files; defaults where they are absent."""
    pooling = "mean"
    normalize = True
    modules_path = model_dir / "modules.json"
    pooling_dir = model_dir / "1_Pooling"
    if modules_path.is_file():
        modules = _read_json(modules_path)
        types = [str(module.get("type", "")) for module in modules]
        # A model that declares its modules normalises only with a Normalize module.
        normalize = any(t.endswith(".Normalize") for t in types)
        for module in modules:
            if str(module.get("type", "")).endswith(".Pooling"):
                pooling_dir = model_dir / str(module.get("path", ""))
    pooling_config = pooling_dir / "config.json"
    if pooling_config.is_file():
        config = _read_json(pooling_config)
        if config.get("pooling_mode_lasttoken"):
            pooling = "last"
        elif config.get("pooling_mode_cls_token"):
            pooling = "cls"
        elif config.get("pooling_mode_mean_tokens"):
            pooling = "mean"
        else:
            raise SpecError(
                f"{pooling_config}: only mean, cls and last-token pooling are supported"
            )

    max_tokens = None
    st_config = model_dir / "sentence_bert_config.json"
    if st_config.is_file():
        limit = _read_json(st_config).get("max_seq_length")
        if isinstance(limit, int) and limit > 0:
            max_tokens = limit

    query_template = document_template = TEXT
    prompts_path = model_dir / "config_sentence_transformers.json"
    if prompts_path.is_file():
        prompts = _read_json(prompts_path).get("prompts") or {}
        # Prompts are prefixes; braces in them are literal text.
        query_template = _literal(str(prompts.get("query", ""))) + TEXT
        document_template = (
            _literal(str(prompts.get("document", prompts.get("passage", "")))) + TEXT
        )
    return ModelSpec(
        pooling=pooling,
        normalize=normalize,
        max_tokens=max_tokens,
        query_template=query_template,
        document_template=document_template,
    )


def _literal(prefix: str) -> str:
    if TEXT in prefix or TASK in prefix:
        raise SpecError(f"prompt {prefix!r} contains a template placeholder")
    return prefix


def spec_for(name: str, model_dir: Path) -> ModelSpec:
    """The registry's spec for `name`, else one read from the model's files."""
    known = KNOWN_MODELS.get(name)
    if known is not None:
        return known
    return _sentence_transformers_spec(model_dir)
