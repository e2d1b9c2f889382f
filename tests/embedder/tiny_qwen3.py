"""A small randomly initialised Qwen3 embedding model, built offline.

Two layers, hidden size 64, a byte-level BPE tokenizer trained on a few
sentences that ends every text with `<|endoftext|>` (as Qwen3-Embedding's
does) and pads on the left, and the sentence-transformers files of
Qwen3-Embedding (last-token pooling, Normalize, a query prompt), so that
sentence-transformers itself can serve as the reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

from services.embedder.registry import QWEN3_TASK

EOS = "<|endoftext|>"
HIDDEN = 64
MAX_TOKENS = 64
QUERY_PROMPT = f"Instruct: {QWEN3_TASK}\nQuery:"


def build(directory: Path, corpus: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([*corpus, QUERY_PROMPT] * 4, trainer)
    eos = tokenizer.token_to_id(EOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A {EOS} $B:1 {EOS}:1", special_tokens=[(EOS, eos)]
    )
    PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        eos_token=EOS,
        pad_token=EOS,
        padding_side="left",
        model_max_length=MAX_TOKENS,
    ).save_pretrained(str(directory))

    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=256,
        # Wider than the default 0.02, so different texts get clearly
        # different vectors and equality checks mean something.
        initializer_range=0.2,
        pad_token_id=eos,
        eos_token_id=eos,
        bos_token_id=eos,
    )
    model = Qwen3Model(config)
    model.eval()  # type: ignore[no-untyped-call]
    model.save_pretrained(str(directory))

    files = {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
        "1_Pooling/config.json": {
            "word_embedding_dimension": HIDDEN,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": False,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": True,
            "include_prompt": True,
        },
        "sentence_bert_config.json": {"max_seq_length": MAX_TOKENS, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": QUERY_PROMPT, "document": ""},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2), encoding="utf-8")
    (directory / "2_Normalize").mkdir(exist_ok=True)
    return directory
