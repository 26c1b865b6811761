#!/usr/bin/env python3
"""Independent reference of the whole Hogwild! loop, checked against `hogwild run`'s greedy tokens.

Usage:
    hogwild_reference.py check --hogwild BIN CONFIG.yaml [key=value ...] [--keep DIR]
    hogwild_reference.py suite {tiny,demo} --hogwild BIN [--model GGUF]

`check` runs the engine (`hogwild run CONFIG overrides weights=f32 sampling.temperature=0
record_logprobs=5`), reads its HDF5 results with h5py, then replays the run here, in float64
numpy, from the documented rules alone (docs/design.md §2-§5), and compares token by token.
`suite tiny` makes tiny random models (scripts/make_tiny_model.py with the demo model's
tokenizer, lm_head steered towards a few punctuation tokens so that steps end and merge) and
checks 2-4 workers in every layout, both prompt styles and both finishers; `suite demo` checks
the demo model (SmolLM2-135M, Q4_1 dequantized) on a short budget. Exit 0: every case agrees;
1: a mismatch (printed: config, pass, worker, expected vs got); 77: skipped (numpy, h5py,
tokenizers, jinja2 or yaml missing, or no demo model, whose tokenizer every case needs).

What is reimplemented here (nothing is read from the engine but its final tokens, steps and
stop reason, which are what is checked):
  * the prompt: the model's chat template (jinja2, as transformers renders it) and the
    `tokenizers` library on the tokenizer.json exported by scripts/hf_tokenizer_from_gguf.py;
  * the blocks and views of each layout and style (common, headers, marker, one step per
    worker; paper: headers computed alone from position 0, the last marker joined to the own
    header; compact: headers after the prompt), the step-end rule (sentence mark before the
    last "\\n\\n", no open fence), merges into the history, step prefixes, the quick checks
    (paper: fed-token count; compact: one per interval generated), suppressed tokens, the stop
    rules, the budget, and both finishers (reencode: the compiled transcript re-encoded in a
    fresh block; in_cache: worker 0's own view);
  * the transformer (scripts/reference_forward.py's float64 ops: RMSNorm, NeoX RoPE, GQA,
    SwiGLU) and the attention over views the authors' way: every token's key is stored rotated
    to the position it had in its writer's view when written, and for each view the keys are
    rotated again, by (view position - written position), then one causal softmax over the
    view's concatenated K/V. (The engine instead keeps block-local keys and rotates queries.)
    Every pass computes all workers' new tokens layer by layer, writing all their K/V before
    any attention (instant sync).

Tolerance: the reference is teacher-forced with the engine's tokens (so one legitimate tie does
not derail the rest) and checks each sampled token is its argmax over the non-suppressed
vocabulary; where it is not, the engine's token is accepted only if it is the reference's
second choice and the top-2 logits are within 1e-4 relative (|l1 - l2| <= 1e-4 * |l1|), and such
ties are counted in the summary. The engine's recorded log-probabilities (record_logprobs) must
agree with the reference's within 2e-3 absolute (fp32 against float64 over 30 layers). Prefix
tokens, step ends (the steps table), stop reason, pass count and the finisher's text must be
equal.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
# One BLAS thread: the matrices are small, and the test shares two cores with the others.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(SCRIPTS_DIR)
sys.path.insert(0, SCRIPTS_DIR)

MISSING = []
for _module in ("numpy", "h5py", "tokenizers", "jinja2", "yaml"):
    try:
        __import__(_module)
    except ImportError:
        MISSING.append(_module)
if not MISSING:
    import h5py
    import jinja2.sandbox
    import numpy as np
    import tokenizers
    import yaml

    import reference_forward as rf
    from gguf_to_hf import export_tokenizer_files

DEMO_MODEL = os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_NAMES = ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank"]
SEPARATOR = "\n\n"
TIE_RELATIVE = 1e-4
LOGPROB_TOLERANCE = 2e-3
SENTENCE_MARKS = [".", "?", "!", "\u3002", "\u06d4", "\u061f", "\u0964", "\u0965", "\u2026",
                  "\u203d", "\u0f0d", "\u1803", "\u0589", "\u10fb", "\u00b6", "\u2767"]


class Mismatch(Exception):
    """The engine and the reference disagree; the message says where."""


# ---------------------------------------------------------------------------------------------
# Prompt settings (configs/README.md, "Prompts"; docs/design.md §5)


def default_prompts(style):
    p = {"others_header": "\n\n### Work in progress (others)\n\n",
         "own_header": "### Work in progress (own)\n\n",
         "step_prefix": "**{name} [{step}]:** ",
         "first_step_prefix": "**{name} [{step}]:** Hi, I'm {name}.",
         "redundancy_check": "Quick check: am I doing redundant work? (yes/no): ",
         "finisher_tokens": 16, "chat_template": True, "collaborate": True, "system": "",
         "user": None, "history_header": "", "step_end": "two_newlines"}
    if style == "paper":
        p.update(lead_step_prefix="**{name} [{step}]:** Hi, I'm {name}. Here's how we can",
                 incomplete_marker="<...>", redundancy_interval=256,
                 stop_rule="number_at_step_end", finisher_mode="reencode",
                 finisher="\n\nWait, given the limited time, I have to give an answer right now. "
                          "Considering all my previous attempts, I have to conclude that the final "
                          "answer is \\boxed{")
    else:
        p.update(system=None, user="", history_header="### Past steps\n\n", lead_step_prefix="",
                 incomplete_marker=" <...>", redundancy_interval=1024, stop_rule="any_boxed",
                 finisher_mode="in_cache",
                 finisher="\n\n... I have to give an answer right now. Considering everything "
                          "written above, the final answer is \\boxed{")
    return p


def settings_from_config(config):
    """The team settings of a run's configuration (the YAML the engine wrote into its results)."""
    given = config.get("prompts") or {}
    style = given.get("style", "paper")
    prompts = default_prompts(style)
    prompts.update(given)
    prompts["style"] = style
    for key in ("user", "system"):
        if prompts[key] is None:
            raise Mismatch(f"set prompts.{key} in the config: the reference does not copy the "
                           f"engine's built-in collaboration prompt")
    workers = int(config.get("workers", 2))
    names = list(config.get("names") or DEFAULT_NAMES[:workers])
    return {"prompts": prompts, "names": names, "layout": config.get("layout", "combined"),
            "budget": int(config.get("budget", 1024)),
            "max_tokens": int(config.get("max_tokens_per_problem", 8192))}


def format_names(names):
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def expand(template, values):
    """{key} placeholders; "{{" is "{"; unknown keys stay."""
    out, i = [], 0
    while i < len(template):
        if template.startswith("{{", i):
            out.append("{")
            i += 2
            continue
        if template[i] == "{":
            j = template.find("}", i)
            if j > 0 and template[i + 1:j] in values:
                out.append(values[template[i + 1:j]])
                i = j + 1
                continue
        out.append(template[i])
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Text rules (docs/design.md §2, §5), written from the documentation


def fence_open(text):
    """True if a code fence (``` ~~~) or display math ($$, \\[) is open at the end of `text`."""
    math_state, code_char, code_len = None, None, 0
    for line in text.split("\n"):
        if math_state is None:
            stripped = line.lstrip(" \t")
            indent = len(line) - len(stripped)
            char = stripped[:1]
            run = len(stripped) - len(stripped.lstrip(char)) if char in ("`", "~") else 0
            if code_char is not None:
                if char == code_char and run >= code_len:
                    code_char = None
                continue
            if run >= 3 and not (char == "`" and "`" in line[indent + run:]):
                code_char, code_len = char, run
                continue
        i = 0
        while i < len(line):
            c, nxt = line[i], line[i + 1] if i + 1 < len(line) else ""
            if c == "\\":
                if nxt == "[" and math_state is None:
                    math_state = "bracket"
                if nxt == "]" and math_state == "bracket":
                    math_state = None
                i += 1
            elif c == "$" and nxt == "$":
                if math_state is None:
                    math_state = "dollars"
                elif math_state == "dollars":
                    math_state = None
                i += 1
            i += 1
    return code_char is not None or math_state is not None


class StepEnd:
    """Appends token bytes to the step text; a token ends the step when a "\\n\\n" ends inside it,
    the text before the last one (trailing whitespace stripped) ends with a sentence mark, and
    no fence is open there."""

    def __init__(self, prefix=b"", one_token=False):
        self.text, self.one_token = bytes(prefix), one_token  # one_token: the authors' rule

    def push(self, token_bytes):
        start = len(self.text)
        self.text += token_bytes
        sep = self.text.rfind(b"\n\n")
        if not token_bytes or sep < 0 or sep + 2 <= start:
            return False
        if self.one_token and b"\n\n" not in token_bytes:
            return False
        before = self.text[:sep].rstrip(b" \t\n\r\f\v")
        if not any(before.endswith(m.encode()) for m in SENTENCE_MARKS):
            return False
        return self.one_token or not fence_open(self.text[:sep].decode("utf-8", errors="replace"))


def boxed_number(text):
    """The last "\\boxed{" whose text up to the next "}" reads as a Python float."""
    end = len(text)
    while True:
        i = text.rfind("\\boxed{", 0, end)
        if i < 0:
            return None
        j = text.find("}", i + 7)
        if j >= 0:
            content = text[i + 7:j]
            try:
                float(content)
                return content.strip()
            except ValueError:
                pass
        end = i


def extract_boxed(text):
    """Content of the last complete, brace-balanced \\boxed{} or \\fbox{}."""
    starts = sorted([(i, len(o)) for o in ("\\boxed{", "\\fbox{")
                     for i in range(len(text)) if text.startswith(o, i)], reverse=True)
    for i, n in starts:
        depth, k = 1, i + n
        while k < len(text):
            if text[k] == "\\" and k + 1 < len(text) and text[k + 1] in "{}":
                k += 2
                continue
            depth += {"{": 1, "}": -1}.get(text[k], 0)
            if depth == 0:
                return text[i + n:k]
            k += 1
    return None


# ---------------------------------------------------------------------------------------------
# Tokenizer: the `tokenizers` library on an exported tokenizer.json, the template by jinja2


class Tok:
    def __init__(self, folder):
        self.hf = tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        with open(os.path.join(folder, "tokenizer_config.json")) as f:
            self.config = json.load(f)
        decoder = rf.byte_decoder()
        vocab = self.hf.get_vocab(with_added_tokens=True)
        self.size = max(vocab.values()) + 1
        added = {t.content for t in self.hf.get_added_tokens_decoder().values()}
        self.bytes = [b""] * self.size
        for text, i in vocab.items():
            if text in added or not all(c in decoder for c in text):
                self.bytes[i] = text.encode()
            else:
                self.bytes[i] = bytes(decoder[c] for c in text)
        special = {i for i, t in self.hf.get_added_tokens_decoder().items() if t.special}
        eos = {vocab[t] for t in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>")
               if t in vocab and vocab[t] in special}
        if self.config.get("eos_token") in vocab:
            eos.add(vocab[self.config["eos_token"]])
        gen_path = os.path.join(folder, "generation_config.json")
        if os.path.isfile(gen_path):
            with open(gen_path) as f:
                ids = json.load(f).get("eos_token_id")
            eos.update(ids if isinstance(ids, list) else [] if ids is None else [ids])
        self.eos = eos
        self.bos = vocab.get(self.config.get("bos_token") or "")
        # What a collaborating worker may not write (docs/design.md §5).
        self.suppressed = sorted(
            [i for i, b in enumerate(self.bytes) if b"#" in b and not b.strip(b"# \n")]
            + list(eos) + ([self.bos] if self.bos is not None else [])
            + [i for i, b in enumerate(self.bytes) if b == b"</think>"])

    def encode(self, text):
        return self.hf.encode(text, add_special_tokens=False).ids

    def decode_bytes(self, ids):
        return b"".join(self.bytes[i] for i in ids)

    def decode(self, ids):
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def chat(self, messages):
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        return env.from_string(self.config["chat_template"]).render(
            messages=messages, add_generation_prompt=True, bos_token="", eos_token="")


# ---------------------------------------------------------------------------------------------
# The model over views, the authors' way (keys re-rotated per view)


def rotate(x, angles_cos, angles_sin):
    return x * angles_cos + rf.rotate_half(x) * angles_sin


class Store:
    """Every token's per-layer K (rotated to the position it was written at) and V."""

    def __init__(self, model, capacity=1 << 14):
        shape = (model.layers, capacity, model.kv_heads, model.head_dim)
        self.k = np.zeros(shape)
        self.v = np.zeros(shape)
        self.written = np.zeros(capacity, dtype=np.int64)
        self.count = 0

    def new(self, positions):
        ids = np.arange(self.count, self.count + len(positions))
        if ids[-1] >= self.written.shape[0]:
            raise Mismatch("reference store full")
        self.written[ids] = positions
        self.count += len(positions)
        return ids


class Reference:
    def __init__(self, model):
        self.m = model
        self.store = Store(model)
        self.blocks = {}  # name -> list of token ids in the store

    def cos_sin(self, positions):
        angles = np.outer(np.asarray(positions, dtype=np.float64), self.m.inv_freq)
        angles = np.concatenate([angles, angles], axis=-1)
        return np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]

    def forward(self, runs):
        """runs: [(block, tokens, view)] fed in one pass; view lists block names, the run's block
        last. Returns the logits of each run's last token. All runs' K/V are written in each
        layer before any attention, and views are laid out after every run is placed."""
        m, st = self.m, self.store
        for block, tokens, view in runs:
            for b in view:  # a block not made yet (an unused marker) is an empty one
                self.blocks.setdefault(b, [])
            assert view[-1] == block
        # Place every run's tokens first (block lengths then include this pass's tokens), then
        # each run's positions in its own view: its written positions.
        placed = []
        for block, tokens, view in runs:
            placed.append(len(self.blocks[block]))
            self.blocks[block].extend([-1] * len(tokens))
        new_ids, layouts = [], []
        for (block, tokens, view), first in zip(runs, placed):
            start = sum(len(self.blocks[b]) for b in view[:-1])
            positions = np.arange(start + first, start + first + len(tokens))
            ids = st.new(positions)
            self.blocks[block][first:first + len(tokens)] = list(ids)
            new_ids.append(ids)
        for (block, tokens, view), ids in zip(runs, new_ids):
            view_ids = np.array([t for b in view for t in self.blocks[b]], dtype=np.int64)
            view_pos = np.arange(len(view_ids))
            cos, sin = self.cos_sin(view_pos - st.written[view_ids])
            q_pos = st.written[ids]
            q_cos, q_sin = self.cos_sin(q_pos)
            layouts.append((view_ids, view_pos, cos, sin, q_pos, q_cos, q_sin))
        all_ids = np.concatenate(new_ids)
        all_tokens = np.concatenate([np.asarray(t, dtype=np.int64) for _, t, _ in runs])
        w_cos, w_sin = self.cos_sin(st.written[all_ids])
        x = m.w["model.embed_tokens.weight"][all_tokens]
        scale = m.attention_factor ** 2 / math.sqrt(m.head_dim)
        group = m.heads // m.kv_heads
        bounds = np.cumsum([0] + [len(t) for _, t, _ in runs])
        for layer in range(m.layers):
            p = f"model.layers.{layer}."
            a = p + "self_attn."
            h = rf.rms_norm(x, m.w[p + "input_layernorm.weight"], m.eps)
            q = rf.linear(h, m.w[a + "q_proj.weight"], m.w.get(a + "q_proj.bias"))
            k = rf.linear(h, m.w[a + "k_proj.weight"], m.w.get(a + "k_proj.bias"))
            v = rf.linear(h, m.w[a + "v_proj.weight"], m.w.get(a + "v_proj.bias"))
            q = q.reshape(len(all_ids), m.heads, m.head_dim)
            k = k.reshape(len(all_ids), m.kv_heads, m.head_dim)
            v = v.reshape(len(all_ids), m.kv_heads, m.head_dim)
            if m.arch == "qwen3":
                q = rf.rms_norm(q, m.w[a + "q_norm.weight"], m.eps)
                k = rf.rms_norm(k, m.w[a + "k_norm.weight"], m.eps)
            st.k[layer, all_ids] = rotate(k, w_cos, w_sin)  # at the written position
            st.v[layer, all_ids] = v
            out = np.zeros((len(all_ids), m.heads, m.head_dim))
            for r, (view_ids, view_pos, cos, sin, q_pos, q_cos, q_sin) in enumerate(layouts):
                lo, hi = bounds[r], bounds[r + 1]
                keys = rotate(st.k[layer, view_ids], cos, sin)  # to this view's positions
                vals = st.v[layer, view_ids]
                qr = rotate(q[lo:hi], q_cos, q_sin)  # [T, H, d]
                keys = np.repeat(keys, group, axis=1)  # [S, H, d]
                vals = np.repeat(vals, group, axis=1)
                scores = np.einsum("thd,shd->hts", qr, keys) * scale
                visible = view_pos[None, :] <= q_pos[:, None]
                scores = np.where(visible[None], scores, -np.inf)
                out[lo:hi] = np.einsum("hts,shd->thd", rf.softmax(scores), vals)
            out = out.reshape(len(all_ids), m.heads * m.head_dim)
            x = x + rf.linear(out, m.w[a + "o_proj.weight"], m.w.get(a + "o_proj.bias"))
            h = rf.rms_norm(x, m.w[p + "post_attention_layernorm.weight"], m.eps)
            x = x + rf.mlp_block(m, layer, h)
        last = x[bounds[1:] - 1]
        last = rf.rms_norm(last, m.w["model.norm.weight"], m.eps)
        return rf.linear(last, m.w["lm_head.weight"])

    def merge(self, into, block):
        """History merge: the step's tokens join `into` with their K/V as written."""
        self.blocks[into].extend(self.blocks.pop(block))


# ---------------------------------------------------------------------------------------------
# The team loop (docs/design.md §2, §5), teacher-forced with the engine's tokens and checked


class Team:
    def __init__(self, settings, question, tok, model, engine, label):
        self.s, self.p = settings, settings["prompts"]
        self.tok, self.ref = tok, Reference(model)
        self.engine, self.label = engine, label
        self.names = settings["names"]
        self.n = len(self.names)
        self.paper = self.p["style"] == "paper"
        self.ties, self.logprob_diff, self.checked = 0, 0.0, 0
        self.suppress = np.zeros(tok.size, dtype=bool)
        self.suppress[tok.suppressed] = True
        values = {"names": format_names(self.names), "count": str(self.n)}
        messages = []
        if self.p["system"]:
            messages.append({"role": "system", "content": expand(self.p["system"], values)})
        user = expand(self.p["user"], values) + SEPARATOR if self.p["user"] else ""
        messages.append({"role": "user", "content": user + question})
        if not self.p["chat_template"]:
            raise Mismatch("the reference covers prompts.chat_template: true only")
        self.prompt_text = tok.chat(messages) + self.p["history_header"]
        self.prompt = tok.encode(self.prompt_text)
        self.layout = settings["layout"]
        self.shows_others = self.layout != "interleaved" and self.n > 1
        self.merges = self.layout != "contiguous"
        self.steps, self.passes, self.generated = [], 0, 0
        self.fed_since_check, self.checks_taken = 0, 0
        self.stop_reason, self.answer, self.finisher_text = "", "", ""
        self.w = [{"tokens": [], "step": 0, "first": 0, "pending": [], "ends": False,
                   "block": f"{name}#1", "blocks": 1, "det": StepEnd()} for name in self.names]

    # -- blocks and views
    def header_texts(self):
        marker = self.p["incomplete_marker"] + SEPARATOR
        if not self.paper:
            return [("others_header", self.p["others_header"]),
                    ("own_header", self.p["own_header"]), ("marker", marker)]
        if self.shows_others:
            out = [("others_header", self.p["others_header"])]
            if self.n > 2:
                out.append(("marker", marker))
            return out + [("own_header", marker + self.p["own_header"])]
        return [("own_header", SEPARATOR + self.p["own_header"])]

    def view(self, w):
        v = ["common"]
        if self.shows_others:
            v.append("others_header")
            last_other = w - 1 if w == self.n - 1 else self.n - 1
            for o in range(self.n):
                if o == w:
                    continue
                v.append(self.w[o]["block"])
                if not self.paper or o != last_other:
                    v.append("marker")
        v.append("own_header")
        v.append(self.w[w]["block"])
        return v

    # -- the engine's tokens, consumed in order
    def expect_forced(self, w, ids, what):
        worker = self.w[w]
        at = len(worker["tokens"])
        got = self.engine["tokens"][w][at:at + len(ids)]
        if list(got) != list(ids):
            raise Mismatch(f"{self.label}: worker {self.names[w]} {what} at token {at}: expected "
                           f"{ids} {self.tok.decode(ids)!r}, engine has {list(got)} "
                           f"{self.tok.decode(list(got))!r}")
        worker["tokens"].extend(ids)

    def check_sampled(self, w, logits):
        worker = self.w[w]
        at = len(worker["tokens"])
        engine_tokens = self.engine["tokens"][w]
        if at >= len(engine_tokens):
            raise Mismatch(f"{self.label}: pass {self.passes}: worker {self.names[w]} samples "
                           f"token {at} here, but the engine's worker stopped after "
                           f"{len(engine_tokens)}")
        got = int(engine_tokens[at])
        masked = np.where(self.suppress, -np.inf, logits)
        top2 = np.argpartition(-masked, 1)[:2]
        best, second = sorted((int(i) for i in top2), key=lambda i: (-masked[i], i))
        if got != best:
            near = abs(masked[best] - masked[second]) <= TIE_RELATIVE * abs(masked[best])
            if not (got == second and near):
                raise Mismatch(
                    f"{self.label}: pass {self.passes}, worker {self.names[w]}, token {at}: "
                    f"reference argmax {best} {self.tok.decode([best])!r} "
                    f"(logit {masked[best]:.6f}),"
                    f" engine {got} {self.tok.decode([got])!r} (reference logit "
                    f"{masked[got]:.6f}); context {self.tok.decode(worker['tokens'][-12:])!r}")
            self.ties += 1
        logprobs = self.engine["logprobs"][w]
        if logprobs is not None:
            ref = masked[got] - masked[best] - math.log(np.sum(np.exp(masked - masked[best])))
            diff = abs(float(logprobs[at]) - ref)
            self.logprob_diff = max(self.logprob_diff, diff)
            if not diff <= LOGPROB_TOLERANCE:
                raise Mismatch(f"{self.label}: pass {self.passes}, worker {self.names[w]}, token "
                               f"{at}: engine logprob {logprobs[at]:.6f}, reference {ref:.6f}")
        self.checked += 1
        return got

    # -- steps
    def start_step(self, w, first):
        worker = self.w[w]
        if not first and self.merges:
            worker["blocks"] += 1
            worker["block"] = f"{self.names[w]}#{worker['blocks']}"
        worker["step"] += 1
        worker["first"] = len(worker["tokens"])
        worker["ends"] = False
        if first:
            fmt = self.p["lead_step_prefix"] if w == 0 and self.p["lead_step_prefix"] else \
                (self.p["first_step_prefix"] or self.p["step_prefix"])
        else:
            fmt = self.p["step_prefix"]
        prefix = expand(fmt, {"name": self.names[w], "step": str(worker["step"])})
        interval = int(self.p["redundancy_interval"])
        if self.paper:
            if not first and interval > 0 and self.fed_since_check > interval:
                prefix += self.p["redundancy_check"]
                self.fed_since_check = 0
        elif interval > 0 and self.generated // interval > self.checks_taken:
            prefix += self.p["redundancy_check"]
            self.checks_taken += 1
        worker["det"] = StepEnd(prefix.encode(), self.p["step_end"] == "one_token")
        ids = self.tok.encode(prefix) if prefix else []
        self.expect_forced(w, ids, f"step {worker['step']} prefix {prefix!r}")
        worker["pending"] = list(ids)

    def record_step(self, w):
        worker = self.w[w]
        self.steps.append((w, worker["step"], worker["first"], len(worker["tokens"]), self.passes))

    def finish_step(self, w):
        worker = self.w[w]
        last = worker["pending"][0]
        self.record_step(w)
        if self.merges:
            self.ref.merge("common", worker["block"])
        self.start_step(w, False)
        worker["pending"].insert(0, last)

    def accept(self, w, token):
        worker = self.w[w]
        worker["tokens"].append(token)
        worker["pending"] = [token]
        worker["ends"] = worker["det"].push(self.tok.bytes[token])
        text = worker["det"].text.decode("utf-8", errors="replace")
        if self.p["stop_rule"] == "any_boxed":
            boxed = extract_boxed(text)
            if boxed is not None:
                self.answer = boxed
                self.stop("answer")
        elif worker["ends"]:
            number = boxed_number(text)
            if number is not None:
                self.answer = number
                self.stop("answer")

    def transcript(self):
        t = ""
        for w, _, first, end, _ in self.steps:
            t += self.tok.decode(self.w[w]["tokens"][first:end])
            if not t.endswith(SEPARATOR):
                t += SEPARATOR
        for worker in self.w:
            if worker["first"] < len(worker["tokens"]):
                t += self.tok.decode(worker["tokens"][worker["first"]:])
                t += self.p["incomplete_marker"] + SEPARATOR
        return t

    def stop(self, reason):
        if self.stop_reason:
            return
        self.stop_reason = reason
        unfed = self.w[0]["pending"]
        for w, worker in enumerate(self.w):
            if worker["ends"]:
                self.record_step(w)
                worker["first"] = len(worker["tokens"])
            worker["pending"], worker["ends"] = [], False
        self.w[0]["pending"] = unfed
        if not self.answer and self.p["stop_rule"] == "number_at_step_end":
            self.answer = boxed_number(self.transcript()) or ""
        if self.answer or int(self.p["finisher_tokens"]) == 0 or not self.p["finisher"]:
            return
        self.finisher()

    def cache_tokens(self):
        return (sum(len(b) for b in self.ref.blocks.values())
                + sum(len(w["pending"]) for w in self.w))

    # -- the finisher (docs/design.md §5), greedy without suppression
    def finisher(self):
        p, tok, worker = self.p, self.tok, self.w[0]
        self.finisher_text = p["finisher"]
        if p["finisher_mode"] == "reencode":
            text = ""
            for w, _, first, end, _ in self.steps:
                text += tok.decode(self.w[w]["tokens"][first:end])
            text += p["others_header"]
            for other in self.w:
                text += (tok.decode(other["tokens"][other["first"]:]) + p["incomplete_marker"]
                         + SEPARATOR)
            text += p["finisher"]
            # the whole text encoded at once, as the authors do: the transcript's first
            # characters may merge with the prompt's last ones
            pending = tok.encode(self.prompt_text + text)
            if len(pending) + int(p["finisher_tokens"]) <= self.s["max_tokens"]:
                self.ref = Reference(self.ref.m)  # the team's blocks are released
                self.run_finisher(pending, ["finisher"], answered_stops=False)
                return
        pending = worker["pending"] + tok.encode(p["finisher"])
        self.run_finisher(pending, self.view(0), answered_stops=True)

    def run_finisher(self, pending, view, answered_stops):
        number_rule = self.p["stop_rule"] == "number_at_step_end"
        finisher_bytes = self.finisher_text.encode()
        for generated in range(1, int(self.p["finisher_tokens"]) + 1):
            logits = self.ref.forward([(view[-1], pending, view)])[0]
            token = int(np.argmax(logits))
            if token not in self.tok.eos:
                finisher_bytes += self.tok.bytes[token]
                self.finisher_text = finisher_bytes.decode("utf-8", errors="replace")
            found = (boxed_number if number_rule else extract_boxed)(self.finisher_text)
            if found is not None:
                self.answer = found
            if token in self.tok.eos or (self.answer and answered_stops):
                return
            pending = [token]

    # -- the whole run
    def run(self):
        ref = self.ref
        ref.forward([("common", self.prompt, ["common"])])
        headers = self.header_texts()
        runs = [(name, self.tok.encode(text), [name] if self.paper else ["common", name])
                for name, text in headers]
        runs = [r for r in runs if r[1]]
        if runs:  # headers never need logits; computed in one pass, as the engine does
            ref.forward(runs)
        for w in range(self.n):
            self.start_step(w, True)
        while not self.stop_reason:
            runs = [(self.w[w]["block"], self.w[w]["pending"], self.view(w)) for w in range(self.n)]
            logits = ref.forward(runs)
            self.passes += 1
            for w in range(self.n):
                worker = self.w[w]
                if not worker["pending"]:
                    continue
                worker["pending"], worker["ends"] = [], False
                if self.stop_reason:
                    continue
                token = self.check_sampled(w, logits[w])
                self.generated += 1
                self.accept(w, token)
            if not self.stop_reason and self.passes >= self.s["budget"]:
                self.stop("budget")
            if not self.stop_reason:
                for w in range(self.n):
                    if self.w[w]["ends"]:
                        self.finish_step(w)
                    self.fed_since_check += len(self.w[w]["pending"])
            full = self.cache_tokens() + self.reserve() >= self.s["max_tokens"]
            if not self.stop_reason and full:
                self.stop("context")
        self.compare()

    def reserve(self):
        p = self.p
        return len(self.tok.encode(p["finisher"])) + int(p["finisher_tokens"]) + 2 * self.n

    def compare(self):
        e = self.engine
        for w in range(self.n):
            ours, theirs = self.w[w]["tokens"], list(e["tokens"][w])
            if ours != theirs:
                raise Mismatch(f"{self.label}: worker {self.names[w]} wrote {len(theirs)} tokens, "
                               f"the reference {len(ours)}")
        if [tuple(s) for s in e["steps"]] != self.steps:
            raise Mismatch(f"{self.label}: steps (worker, step, first, end, pass) differ:\n"
                           f"  engine    {[tuple(s) for s in e['steps']]}\n"
                           f"  reference {self.steps}")
        for key, ours in (("stop_reason", self.stop_reason), ("forward_passes", self.passes)):
            if e[key] != ours:
                raise Mismatch(f"{self.label}: {key}: engine {e[key]!r}, reference {ours!r}")
        if e["finisher_text"] != self.finisher_text:
            raise Mismatch(f"{self.label}: finisher text: engine {e['finisher_text']!r}, "
                           f"reference {self.finisher_text!r}")


# ---------------------------------------------------------------------------------------------
# Running the engine and reading its results


def read_results(path):
    out = []
    with h5py.File(path, "r") as f:
        config = yaml.safe_load(f.attrs["config"])
        for pid in f["problems"]:
            g = f["problems"][pid]
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
            names = settings_from_config(config)["names"]
            tokens, logprobs = [], []
            for name in names:
                wg = g["workers"][name]
                tokens.append([int(t) for t in wg["tokens"][()]])
                logprobs.append(wg["logprobs"][()] if "logprobs" in wg else None)
            steps = [(int(r["worker"]), int(r["step"]), int(r["first_token"]), int(r["end_token"]),
                      int(r["finished_pass"])) for r in g["steps"][()]] if "steps" in g else []
            transcript = g["transcript"][()]
            transcript = transcript.decode() if isinstance(transcript, bytes) else transcript
            marker = "[finisher] "
            finisher = ""
            if marker in transcript:
                finisher = transcript[transcript.rindex(marker) + len(marker):]
                finisher = finisher[:-2] if finisher.endswith(SEPARATOR) else finisher
            out.append({"id": pid, "question": attrs["question"], "tokens": tokens,
                        "logprobs": logprobs, "steps": steps, "stop_reason": attrs["stop_reason"],
                        "forward_passes": int(attrs["forward_passes"]), "finisher_text": finisher})
    return config, out


def run_engine(hogwild, config_path, overrides, out_dir):
    output = os.path.join(out_dir, "run.h5")
    forced = ["weights=f32", "sampling.temperature=0", "record_logprobs=5", f"output={output}",
              "threads=2"]
    cmd = [hogwild, "run", config_path, *overrides, *forced, "--quiet"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise Mismatch(f"engine failed ({' '.join(cmd)}):\n{done.stdout}{done.stderr}")
    return output


_MODELS, _TOKENIZERS = {}, {}


def cached_tokenizer(folder):
    """One Tok per tokenizer.json content (the tiny models share the demo model's)."""
    import hashlib
    with open(os.path.join(folder, "tokenizer.json"), "rb") as f:
        key = hashlib.sha1(f.read()).hexdigest()
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = Tok(folder)
    return _TOKENIZERS[key]


def model_and_tokenizer(model_path, scratch):
    key = os.path.abspath(model_path)
    if key not in _MODELS:
        folder = model_path
        if os.path.isfile(model_path):
            folder = os.path.join(scratch, f"tokenizer{len(_MODELS)}")
            os.makedirs(folder, exist_ok=True)
            if not export_tokenizer_files(model_path, folder):
                raise Mismatch(f"{model_path}: cannot export its tokenizer")
        _MODELS[key] = (rf.load_model(model_path), cached_tokenizer(folder))
    return _MODELS[key]


def check(hogwild, config_path, overrides, scratch, need_steps=False):
    """Runs one case; returns a one-line summary, raises Mismatch."""
    label = " ".join([os.path.basename(config_path)] + overrides)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        results = run_engine(hogwild, config_path, overrides, tmp)
        config, problems = read_results(results)
    settings = settings_from_config(config)
    model_path = os.path.join(REPO, config["model"])  # an absolute path stays as it is
    model, tok = model_and_tokenizer(model_path, scratch)
    lines = []
    for problem in problems:
        team = Team(settings, problem["question"], tok, model, problem,
                    f"[{label}] {problem['id']}")
        team.run()
        merges = len(team.steps)
        lines.append(f"ok  {label}: {team.checked} sampled tokens, {merges} steps, "
                     f"stop {team.stop_reason}, ties {team.ties}, max |dlogprob| "
                     f"{team.logprob_diff:.1e}, finisher {team.finisher_text[-20:]!r}")
        if merges == 0 and need_steps:
            raise Mismatch(f"{label}: no step ended: the case does not test step ends and merges")
    return lines


# ---------------------------------------------------------------------------------------------
# Suites


def steered_tiny_model(out, base, tokenizer_folder, seed=4, embed_scale=4.0, cycle_scale=3.0,
                       noise=1.0):
    """A make_tiny_model.py checkpoint (llama, 2 layers, hidden 32, the demo model's vocabulary)
    steered to write text that ends steps: a few tokens (" the", " a", " x", ".", "\\n\\n",
    "!") get larger embeddings, every other lm_head row is scaled down, and each of those tokens'
    rows points along the embedding of the token before it in a fixed cycle, so that greedy
    decoding tends to follow the cycle while attention still moves it (random rows of size
    `noise` on top)."""
    from gguf_to_hf import save_hf_checkpoint
    os.makedirs(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(os.path.join(tokenizer_folder, name), out)
    tok = cached_tokenizer(out)
    with open(os.path.join(base, "config.json")) as f:
        config = json.load(f)
    tensors = rf.read_safetensors(os.path.join(base, "model.safetensors"))
    embed, head = tensors["model.embed_tokens.weight"], tensors["lm_head.weight"]
    cycle = [tok.encode(t)[0] for t in
             (" the", " a", " x", ".", "\n\n", "!", " the", " x", " a", ".", "\n\n")]
    favoured = sorted(set(cycle))
    head *= 0.05
    embed[favoured] *= embed_scale
    rng = np.random.default_rng(seed)
    width = head.shape[1]
    head[favoured] = rng.standard_normal((len(favoured), width)) * noise / math.sqrt(width)
    for before, after in zip(cycle, cycle[1:]):
        head[after] += cycle_scale * embed[before] / np.linalg.norm(embed[before])
    save_hf_checkpoint(out, config, tensors, "f32")


def tiny_base(out, tokenizer_from, seeds):
    """make_tiny_model.py checkpoints (llama, 2 layers, hidden 32, the demo model's vocabulary),
    one per seed in out/seedS; the tokenizer is exported once, into the first."""
    import make_tiny_model
    vocab = []
    for seed in seeds:
        make_tiny_model.make_tiny_model(make_tiny_model.parse_args(
            ["--arch", "llama", "--out", os.path.join(out, f"seed{seed}"), "--seed", str(seed),
             "--layers", "2", "--hidden", "32", "--heads", "4", "--kv-heads", "2",
             "--head-dim", "8", "--ffn", "64"]
            + (["--vocab", str(vocab[0])] if vocab else ["--tokenizer-from", tokenizer_from])))
        if not vocab:
            with open(os.path.join(out, f"seed{seed}", "config.json")) as f:
                vocab.append(json.load(f)["vocab_size"])
    return [os.path.join(out, f"seed{seed}") for seed in seeds]


def write_config(path, model, question, extra=""):
    with open(path, "w") as f:
        f.write(f"model: {model}\nproblems:\n  - question: {json.dumps(question)}\n"
                "max_tokens_per_problem: 4096\npage_size: 8\n"
                "prompts:\n  user: \"You are {names}, {count} assistants; work together.\"\n"
                "  system: \"You are {names}.\"\n" + extra)


def tiny_cases(short, long):
    """(model, overrides) of the tiny suite: 2-4 workers, every layout, both styles and
    finishers; every case must end steps."""
    paper = [(2, "combined"), (2, "contiguous"), (3, "combined"), (3, "interleaved"),
             (3, "contiguous"), (4, "combined"), (4, "interleaved")]
    cases = [(short, [f"workers={w}", f"layout={layout}", "budget=24"]) for w, layout in paper]
    cases[2][1].append("prompts.redundancy_interval=60")  # quick checks, counted as the authors
    cases += [(short, ["workers=3", "prompts.style=compact", "prompts.finisher_mode=reencode",
                       "prompts.redundancy_interval=16", "budget=24"]),
              (short, ["workers=2", "layout=interleaved", "prompts.style=compact", "budget=20"]),
              (short, ["workers=4", "layout=contiguous", "prompts.style=compact", "budget=20"]),
              (short, ["workers=2", "prompts.finisher_mode=in_cache", "budget=20"]),
              (long, ["workers=3", "budget=32"]),
              (long, ["workers=4", "layout=interleaved", "budget=24"]),
              # Stops on an answer: at once, mid-pass (any_boxed: the prefix holds the box, so
              # the first worker stops the team on its first token and the others' are dropped),
              # and at a step end (number_at_step_end: every second step's prefix holds one).
              (short, ["workers=3", "prompts.style=compact",
                       "prompts.first_step_prefix=**{name} [{step}]:** \\boxed{5}", "budget=20"]),
              (short, ["workers=2", "prompts.step_prefix=**{name} [{step}]:** \\boxed{7} ",
                       "budget=20"])]
    return cases


def run_suite(args):
    if MISSING:
        print(f"skipped: python modules missing: {', '.join(MISSING)}")
        return SKIP
    gguf = args.model or DEMO_MODEL
    if not os.path.isfile(gguf):
        print(f"skipped: no demo model at {gguf} (its tokenizer is needed; run scripts/setup.sh)")
        return SKIP
    failures, lines = [], []
    scratch = tempfile.mkdtemp(prefix="hogwild_reference_")
    try:
        config = os.path.join(scratch, "demo.yaml")
        if args.suite == "tiny":
            base4, base5 = tiny_base(os.path.join(scratch, "tiny_base"), gguf, seeds=(4, 5))
            short, long = os.path.join(scratch, "tiny_short"), os.path.join(scratch, "tiny_long")
            steered_tiny_model(short, base4, base4)  # steps of a few tokens: many merges
            steered_tiny_model(long, base5, base4, seed=5, embed_scale=3.0, cycle_scale=2.0,
                               noise=2.0)
            cases = tiny_cases(short, long)
        else:
            shutil.copy(os.path.join(REPO, "configs", "demo.yaml"), config)
            with open(config) as f:
                text = f.read().replace("model: models/", f"model: {REPO}/models/")
            with open(config, "w") as f:
                f.write(text)
            cases = [(None, ["budget=24", "workers=2"]),
                     (None, ["budget=16", "workers=3", "layout=interleaved"]),
                     (None, ["budget=12", "workers=4", "prompts.style=compact",
                             "prompts.system=You are {names}, {count} assistants."])]
        for model, overrides in cases:
            if args.suite == "tiny":  # the config is named after the model, for the messages
                config = os.path.join(scratch, os.path.basename(model) + ".yaml")
                write_config(config, model, "What is 2 + 3?")
            try:
                boxed = any("boxed" in o for o in overrides)
                for line in check(args.hogwild, config, overrides, scratch,
                                  need_steps=args.suite == "tiny" and not boxed):
                    print(line, flush=True)
                    lines.append(line)
            except Mismatch as e:
                print(f"FAIL {e}", flush=True)
                failures.append(str(e))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{len(lines)} case(s) agree, {len(failures)} mismatch(es)")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="one config (+ overrides)")
    c.add_argument("--hogwild", required=True)
    c.add_argument("config")
    c.add_argument("overrides", nargs="*")
    s = sub.add_parser("suite", help="the ctest suites")
    s.add_argument("suite", choices=["tiny", "demo"])
    s.add_argument("--hogwild", required=True)
    s.add_argument("--model", help="the GGUF whose tokenizer (and, for demo, weights) are used")
    args = parser.parse_args()
    if not os.path.isfile(args.hogwild):
        print(f"hogwild_reference.py: --hogwild {args.hogwild}: no such file", file=sys.stderr)
        return 2
    if args.command == "suite":
        return run_suite(args)
    if MISSING:
        print(f"skipped: python modules missing: {', '.join(MISSING)}")
        return SKIP
    scratch = tempfile.mkdtemp(prefix="hogwild_reference_")
    try:
        for line in check(args.hogwild, os.path.abspath(args.config), args.overrides, scratch):
            print(line)
    except Mismatch as e:
        print(f"FAIL {e}")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
