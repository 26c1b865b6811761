#!/usr/bin/env python3
"""Writes a Hugging Face tokenizer directory from a GGUF file's byte-level BPE vocabulary.

    hf_tokenizer_from_gguf.py MODEL.gguf OUT_DIR

OUT_DIR gets tokenizer.json (BPE model, byte-level pre-tokenizer with the Split regex that the
GGUF `tokenizer.ggml.pre` names, added_tokens for control / user-defined tokens),
tokenizer_config.json (bos / eos tokens, add_bos_token, chat_template) and
generation_config.json (bos / eos ids). The pre-tokenizer table mirrors
src/tokenizer/pretokenizer.cpp; tests/tokenizer/test_hf_export.cpp checks that the C++
tokenizer loaded from the output encodes exactly like the one loaded from the GGUF.

Other scripts can `from hf_tokenizer_from_gguf import export_tokenizer`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import gguf

GPT2_PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_NAMES = ("llama-bpe", "llama3", "llama-v3")

# GGUF token types (llama.cpp's llama_token_type).
TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED = 2, 3, 4
# Tokens that end a turn in chat models besides the GGUF eos; kept in step with tokenizer.cpp.
END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>",
               "<|end|>", "<end_of_turn>")


def _byte_level(use_regex: bool) -> dict:
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
            "use_regex": use_regex}


def _split(pattern: str) -> dict:
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated",
            "invert": False}


def pre_tokenizer_for(pre: str) -> dict:
    """The tokenizer.json pre_tokenizer equivalent to llama.cpp's handling of `pre`."""
    if pre in ("gpt2", "gpt-2"):
        return _byte_level(True)
    if pre in LLAMA3_NAMES:
        return {"type": "Sequence", "pretokenizers": [_split(LLAMA3_PATTERN), _byte_level(False)]}
    if pre == "qwen2":
        return {"type": "Sequence", "pretokenizers": [_split(QWEN2_PATTERN), _byte_level(False)]}
    if pre == "smollm":
        return {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, _byte_level(True)]}
    if pre == "default":
        stages = [r"[\p{P}\$\+<=>\^~\|]+", GPT2_PATTERN, r"\p{N}+", "[0-9][0-9][0-9]"]
        return {"type": "Sequence",
                "pretokenizers": [_split(p) for p in stages] + [_byte_level(False)]}
    raise ValueError(f"unsupported pre-tokenizer tokenizer.ggml.pre = {pre!r} "
                     "(supported: gpt2, gpt-2, llama-bpe, llama3, qwen2, smollm, default)")


def _field(reader: gguf.GGUFReader, key: str, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def _id_or_none(value, vocab_size: int):
    if value is None or value < 0 or value >= vocab_size:
        return None
    return int(value)


def export_tokenizer(gguf_path: str, out_dir: str) -> None:
    """Writes tokenizer.json, tokenizer_config.json and generation_config.json to out_dir."""
    reader = gguf.GGUFReader(gguf_path)
    model = _field(reader, "tokenizer.ggml.model")
    if model is None:
        raise ValueError(f"{gguf_path}: has no tokenizer (tokenizer.ggml.model is missing)")
    if model != "gpt2":
        raise ValueError(f"{gguf_path}: tokenizer model {model!r} is not byte-level BPE "
                         "(only 'gpt2' can be exported)")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    merges = _field(reader, "tokenizer.ggml.merges")
    if not tokens or merges is None:
        raise ValueError(f"{gguf_path}: tokenizer.ggml.tokens / tokenizer.ggml.merges missing")
    types = _field(reader, "tokenizer.ggml.token_type", [1] * len(tokens))
    if len(types) != len(tokens):
        raise ValueError(f"{gguf_path}: token_type has {len(types)} entries for "
                         f"{len(tokens)} tokens")
    pre = _field(reader, "tokenizer.ggml.pre", "default")
    pre_tokenizer = pre_tokenizer_for(pre)

    vocab: dict[str, int] = {}
    added_tokens = []
    for token_id, (piece, kind) in enumerate(zip(tokens, types)):
        vocab.setdefault(piece, token_id)
        if kind in (TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNKNOWN):
            special = kind != TOKEN_USER_DEFINED
            added_tokens.append({"id": token_id, "content": piece, "single_word": False,
                                 "lstrip": False, "rstrip": False, "normalized": not special,
                                 "special": special})

    n = len(tokens)
    bos = _id_or_none(_field(reader, "tokenizer.ggml.bos_token_id"), n)
    eos = _id_or_none(_field(reader, "tokenizer.ggml.eos_token_id"), n)
    eos_ids = [i for i in (eos,
                           _id_or_none(_field(reader, "tokenizer.ggml.eot_token_id"), n),
                           _id_or_none(_field(reader, "tokenizer.ggml.eom_token_id"), n))
               if i is not None]
    special_ids = {t["content"]: t["id"] for t in added_tokens}
    for name in END_OF_TURN:
        if name in special_ids and special_ids[name] not in eos_ids:
            eos_ids.append(special_ids[name])
    eos_ids = list(dict.fromkeys(eos_ids))
    add_bos = bos is not None and bool(
        _field(reader, "tokenizer.ggml.add_bos_token", pre in LLAMA3_NAMES))

    if add_bos:
        bos_text = tokens[bos]
        post_processor = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos_text, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos_text, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos_text, "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos_text: {"id": bos_text, "ids": [bos], "tokens": [bos_text]}},
        }
    else:
        post_processor = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                          "use_regex": True}

    tokenizer_json = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens,
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None,
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": False, "byte_fallback": False,
            # Llama-3 emits a piece that is a whole vocabulary entry without merging.
            "ignore_merges": pre in LLAMA3_NAMES,
            "vocab": vocab,
            "merges": list(merges),
        },
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
        "add_bos_token": add_bos,
        "add_eos_token": False,
        "bos_token": tokens[bos] if bos is not None else None,
        "eos_token": tokens[eos] if eos is not None else None,
        "added_tokens_decoder": {str(t["id"]): {k: v for k, v in t.items() if k != "id"}
                                 for t in added_tokens},
    }
    template = _field(reader, "tokenizer.chat_template")
    if template:
        config["chat_template"] = template
    generation = {"bos_token_id": bos,
                  "eos_token_id": eos_ids[0] if len(eos_ids) == 1 else eos_ids}

    os.makedirs(out_dir, exist_ok=True)
    for name, content in (("tokenizer.json", tokenizer_json),
                          ("tokenizer_config.json", config),
                          ("generation_config.json", generation)):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as out:
            # tokenizer.json is large: one line; the small configs are indented for people.
            indent = None if name == "tokenizer.json" else 1
            json.dump(content, out, ensure_ascii=False, indent=indent)
            out.write("\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gguf", help="GGUF file with a byte-level BPE tokenizer")
    parser.add_argument("out_dir", help="directory to write the Hugging Face files into")
    args = parser.parse_args(argv)
    try:
        export_tokenizer(args.gguf, args.out_dir)
    except (ValueError, OSError) as error:
        print(f"hf_tokenizer_from_gguf: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
