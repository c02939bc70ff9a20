"""Build a tiny random-weight CosyVoice2 / CosyVoice3 model directory from an upstream checkout.

Nothing here is upstream's code or weights: the YAML is read from the operator's checkout at test
time and shrunk, the checkpoints are the state of the modules that YAML builds (random weights),
the ONNX frontends are two small graphs, and the Qwen text tokenizer is a byte-level BPE trained
here. The audio is noise; the point is upstream's code paths (frontend, LLM thread, streaming).

Random weights never sample end-of-speech on their own, so the LM is made to stop: one hidden
dimension is held constant through the Qwen stack (its embedding column is 1, no layer writes to
it), and the speech decoder reads that dimension as a bias: a small positive one for the stop
token that upstream masks until the minimum length, a large negative one for the other stop
tokens (CosyVoice3's decoder has no bias term).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

SPEECH_TOKENS = 512  # the speech vocabulary (6561 upstream)
HIDDEN = 16  # Qwen hidden size (896 upstream)
QWEN_VOCAB = 152064  # covers upstream's added special tokens
BASE_VOCAB = 151643  # Qwen's ordinary tokens: <|endofprompt|> then lands on id 151646
CONSTANT_DIM = 0
EOS_LOGIT = 0.5  # end-of-speech about 6 % of steps once allowed
STOP_LOGIT = -50.0
SPEAKER_EMBED = 192
SPEAKERS = ("speaker_a",)

_CORPUS = [
    "Good morning to everyone here. The quick brown fox jumps over the lazy dog.",
    "This is a short warm-up sentence. Hello, how are you today?",
    "Numbers like one, two and three; dates, places and names.",
    "你好，欢迎使用语音合成。今天天气很好。",  # noqa: RUF001 - Chinese punctuation on purpose
    "Bonjour tout le monde. Guten Tag. こんにちは。",
]

# (pattern, replacement) pairs applied to upstream's example YAML, per generation.
_COMMON = [
    (r"llm_input_size: 896", f"llm_input_size: {HIDDEN}"),
    (r"llm_output_size: 896", f"llm_output_size: {HIDDEN}"),
    (r"speech_token_size: 6561", f"speech_token_size: {SPEECH_TOKENS}"),
    (r"vocab_size: 6561", f"vocab_size: {SPEECH_TOKENS}"),
    (r"base_channels: 512", "base_channels: 32"),
    (r"cond_channels: 512", "cond_channels: 32"),
]
_V2 = [
    (r"linear_units: 2048", "linear_units: 64"),
    (r"num_blocks: 6", "num_blocks: 1"),
    (r"attention_heads: 8", "attention_heads: 2"),
    (r"channels: \[256\]", "channels: [32]"),
    (r"attention_head_dim: 64", "attention_head_dim: 8"),
    (r"n_blocks: 4", "n_blocks: 1"),
    (r"num_mid_blocks: 12", "num_mid_blocks: 1"),
    (r"num_heads: 8", "num_heads: 2"),
]
_V3 = [
    (r"(\n\s+)dim: 1024", r"\1dim: 32"),
    (r"depth: 22", "depth: 1"),
    (r"heads: 16", "heads: 2"),
    (r"dim_head: 64", "dim_head: 16"),
    (r"channels: 1024", "channels: 32"),
]


def put_on_path(repo: Path) -> None:
    """Upstream is not a package: its root and Matcha-TTS go on ``sys.path``."""
    for entry in (repo / "third_party" / "Matcha-TTS", repo):
        if str(entry) not in sys.path:
            sys.path.insert(0, str(entry))


def build(repo: Path, out: Path, generation: int, speakers: tuple[str, ...] = SPEAKERS) -> Path:
    """Write a loadable model directory for ``generation`` (2 or 3) into ``out``."""
    put_on_path(repo)
    out.mkdir(parents=True, exist_ok=True)
    _qwen_dir(out / "CosyVoice-BlankEN")
    name = f"cosyvoice{generation}.yaml"
    (out / name).write_text(_yaml(repo, generation))
    _checkpoints(out, name)
    _campplus(out / "campplus.onnx")
    _speech_tokenizer(out / f"speech_tokenizer_v{generation}.onnx")
    if speakers:
        _speakers(out / "spk2info.pt", speakers)
    return out


def _yaml(repo: Path, generation: int) -> str:
    conf = repo / "examples" / "libritts" / f"cosyvoice{generation}" / "conf"
    text = (conf / f"cosyvoice{generation}.yaml").read_text()
    for pattern, repl in _COMMON + (_V2 if generation == 2 else _V3):
        text, count = re.subn(pattern, repl, text)
        if count == 0:
            raise RuntimeError(f"upstream's YAML changed: {pattern!r} not found")
    # The GAN training block builds large discriminators that inference never uses.
    return re.sub(r"\nhifigan: .*?(?=\n# processor functions)", "\n", text, flags=re.S)


def _qwen_dir(path: Path) -> None:
    from tokenizers import (  # type: ignore[import-not-found]
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        trainers,
    )
    from transformers import Qwen2Config, Qwen2ForCausalLM  # type: ignore[import-not-found]

    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(_CORPUS, trainer)
    data = json.loads(tok.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    for i in range(len(vocab), BASE_VOCAB):  # unreachable fillers: no merge makes them
        vocab[f"<filler{i}>"] = i
    tok = Tokenizer.from_str(json.dumps(data))
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.save(str(path / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 32768,
    }
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    qwen = Qwen2Config(
        vocab_size=QWEN_VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
    )
    Qwen2ForCausalLM(qwen).save_pretrained(str(path), safe_serialization=True)


def _checkpoints(out: Path, name: str) -> None:
    import torch
    from hyperpyyaml import load_hyperpyyaml  # type: ignore[import-not-found]

    with (out / name).open() as f:
        configs = load_hyperpyyaml(
            f, overrides={"qwen_pretrain_path": str(out / "CosyVoice-BlankEN")}
        )
    llm = configs["llm"]
    _make_lm_stop(llm)
    torch.save(llm.state_dict(), out / "llm.pt")
    torch.save(configs["flow"].state_dict(), out / "flow.pt")
    torch.save(configs["hift"].state_dict(), out / "hift.pt")


def _make_lm_stop(llm: Any) -> None:
    import torch

    d = CONSTANT_DIM
    inner = llm.llm.model.model  # Qwen2Encoder -> Qwen2ForCausalLM -> Qwen2Model
    with torch.no_grad():
        tables = [inner.embed_tokens.weight, llm.speech_embedding.weight]
        if hasattr(llm, "llm_embedding"):
            tables.append(llm.llm_embedding.weight)
        for table in tables:
            table.mul_(0.1)
            table[:, d] = 1.0
        for layer in inner.layers:
            layer.self_attn.o_proj.weight[d, :] = 0.0
            layer.mlp.down_proj.weight[d, :] = 0.0
        inner.norm.weight.fill_(1.0)
        # With the other dimensions small, the normed constant dimension is about sqrt(HIDDEN).
        scale = 1.0 / float(np.sqrt(HIDDEN))
        decoder = llm.llm_decoder
        decoder.weight.mul_(0.01)
        decoder.weight[:, d] = 0.0
        if decoder.bias is not None:
            decoder.bias.zero_()
        # The stop token upstream masks until the minimum length (``sampling_ids(ignore_eos)``):
        # CosyVoice2's eos; for CosyVoice3, whose loop stops on any of 200 stop tokens, its sos.
        first = SPEECH_TOKENS
        for token in range(SPEECH_TOKENS, decoder.out_features):
            decoder.weight[token, d] = (EOS_LOGIT if token == first else STOP_LOGIT) * scale


def _save_onnx(graph: Any, path: Path) -> None:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _campplus(path: Path) -> None:
    """fbank (1, T, 80) -> a 192-value speaker embedding: mean over time, then a projection."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    proj = numpy_helper.from_array(
        rng.standard_normal((80, SPEAKER_EMBED)).astype(np.float32) * 0.1, "proj"
    )
    nodes = [
        helper.make_node("ReduceMean", ["feat"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("MatMul", ["mean", "proj"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "campplus",
        [helper.make_tensor_value_info("feat", TensorProto.FLOAT, [1, "T", 80])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, SPEAKER_EMBED])],
        initializer=[proj],
    )
    _save_onnx(graph, path)


def _speech_tokenizer(path: Path) -> None:
    """log-mel (1, 128, T) plus its length -> about T/4 token ids below SPEECH_TOKENS."""
    from onnx import TensorProto, helper, numpy_helper

    consts = [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "start"),
        numpy_helper.from_array(np.array([2**62], dtype=np.int64), "end"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
        numpy_helper.from_array(np.array([4], dtype=np.int64), "step"),
        numpy_helper.from_array(np.array(1000.0, dtype=np.float32), "gain"),
        numpy_helper.from_array(np.array(SPEECH_TOKENS, dtype=np.int32), "vocab"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["feats"], ["frames"], axes=[1], keepdims=0),
        helper.make_node("Slice", ["frames", "start", "end", "axis", "step"], ["every4"]),
        helper.make_node("Abs", ["every4"], ["magnitude"]),
        helper.make_node("Mul", ["magnitude", "gain"], ["scaled"]),
        helper.make_node("Cast", ["scaled"], ["ints"], to=TensorProto.INT32),
        helper.make_node("Mod", ["ints", "vocab"], ["tokens"], fmod=0),
    ]
    graph = helper.make_graph(
        nodes,
        "speech_tokenizer",
        [
            helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, 128, "T"]),
            helper.make_tensor_value_info("feats_length", TensorProto.INT32, [1]),
        ],
        [helper.make_tensor_value_info("tokens", TensorProto.INT32, [1, "N"])],
        initializer=consts,
    )
    _save_onnx(graph, path)


def _speakers(path: Path, speakers: tuple[str, ...]) -> None:
    import torch

    generator = torch.Generator().manual_seed(1)
    info = {
        name: {"embedding": torch.randn(1, SPEAKER_EMBED, generator=generator) * 0.1}
        for name in speakers
    }
    torch.save(info, path)
