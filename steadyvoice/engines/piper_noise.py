"""Seeded noise for Piper voices: move the model's random draws out of the ONNX graph.

Why: a Piper (VITS) voice samples noise twice inside its ONNX graph, with unseeded
``RandomNormalLike`` nodes: once in the stochastic duration predictor (shape ``[B, 2, phonemes]``,
scaled by ``noise_w``) and once when sampling the prior (shape ``[B, 192, frames]``, scaled by
``noise_scale``). Each run therefore sounds slightly different, and onnxruntime offers no
per-request seed (``set_seed`` is process-wide and the kernels keep their own generator state).
Zeroing the noise would make the output deterministic but flat and robotic.

What: :func:`patch_model` replaces every ``RandomNormal``/``RandomNormalLike`` node ``k`` by a new
float32 graph input ``noise_<k>`` of shape ``[1, *channels, L]`` (``L`` free), and computes the
node's old output as::

    Slice(Concat([noise_k, ConstantOfShape(Shape(x))], axis=-1), starts=0, ends=Shape(x))

so the supplied noise is padded with zeros along the last axis (the Slice can never fail) and then
cut to exactly the shape the original node would have produced. ``Shape(x)`` is also exported as
graph output ``noise_<k>_shape``. The patched model lives in memory only.

Why it is exact: :func:`make_noise` draws ``standard_normal((L, C))`` from
``default_rng([seed, piece, k])`` and transposes it, so time step ``t`` always gets draws
``t*C .. t*C+C-1`` of the stream, whatever ``L`` is (the prefix property). :func:`run_seeded` reads
``noise_<k>_shape`` after each run; if any noise was shorter than needed, the zero padding was used,
so the result is discarded and the graph is run again with the needed lengths. The accepted run
consumed only real draws, and the first ``T`` draws do not depend on ``L``; hence the audio is
identical to what any big-enough first guess gives. Bump :data:`NOISE_SCHEME` whenever the patch or
the noise generation changes, so cached audio is invalidated.

Scope: byte-identical on one CPU type with one set of library versions. numpy does not promise
that ``Generator`` streams stay the same across releases, and onnxruntime may pick other kernels
on other CPUs, which is why the engine's ``version`` names those versions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from steadyvoice.engines.base import FloatAudio
from steadyvoice.errors import EngineError, EngineUnavailable

if TYPE_CHECKING:
    import onnx

NOISE_SCHEME = "1"
RANDOM_NORMAL_OPS = frozenset({"RandomNormal", "RandomNormalLike"})
UNSEEDED_OPS = RANDOM_NORMAL_OPS | {
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
}
_FLOAT = 1  # onnx.TensorProto.FLOAT


@dataclass(frozen=True)
class NoiseInput:
    """One replaced random node: the input that feeds it and the output that reports its shape."""

    name: str
    shape_output: str
    channels: tuple[int, ...]


@dataclass(frozen=True)
class PatchedModel:
    """A voice model whose randomness comes from :class:`NoiseInput` graph inputs."""

    model_bytes: bytes
    noise_inputs: tuple[NoiseInput, ...]


def patch_model(model_path: Path) -> PatchedModel:
    """Load ``model_path`` and replace each random-normal node by a seeded noise input."""
    import onnx

    model = onnx.load(str(model_path))
    dims = _inferred_dims(model)
    kept: list[onnx.NodeProto] = []
    specs: list[NoiseInput] = []
    for node in model.graph.node:
        if node.op_type not in RANDOM_NORMAL_OPS:
            kept.append(node)
            continue
        spec, nodes = _replace_node(model.graph, node, len(specs), dims)
        specs.append(spec)
        kept.extend(nodes)
    leftover = sorted({n.op_type for n in kept if n.op_type in UNSEEDED_OPS})
    if leftover or not specs:
        reason = f"unsupported random ops {leftover}" if leftover else "no random-normal nodes"
        raise EngineUnavailable(f"cannot make {model_path.name} deterministic: {reason}")
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return PatchedModel(model_bytes=model.SerializeToString(), noise_inputs=tuple(specs))


def _inferred_dims(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Static dims of every tensor, from shape inference on a copy without stale value_info."""
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
    dims: dict[str, list[int | None]] = {}
    for info in inferred.graph.value_info:
        tensor = info.type.tensor_type
        if tensor.HasField("shape"):
            dims[info.name] = [
                d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim
            ]
    return dims


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _noise_dims(node: onnx.NodeProto, dims: Mapping[str, list[int | None]]) -> list[int | None]:
    shape = _attrs(node).get("shape")
    found = list(shape) if shape is not None else dims.get(node.input[0])
    if found is None or len(found) < 2:
        raise EngineUnavailable(
            f"random node {node.name!r}: shape {found} is not [batch, ..., time]"
        )
    return list(found)


def _replace_node(
    graph: onnx.GraphProto, node: onnx.NodeProto, k: int, dims: Mapping[str, list[int | None]]
) -> tuple[NoiseInput, list[onnx.NodeProto]]:
    """New input ``noise_k``, output ``noise_k_shape`` and the nodes that replace ``node``."""
    from onnx import TensorProto, helper, numpy_helper

    attrs = _attrs(node)
    shape = _noise_dims(node, dims)
    channels = [c for c in shape[1:-1] if c is not None]
    if attrs.get("dtype", _FLOAT) != _FLOAT or len(channels) != len(shape) - 2:
        raise EngineUnavailable(f"random node {node.name!r}: needs float32 and fixed channels")
    spec = NoiseInput(f"noise_{k}", f"noise_{k}_shape", tuple(channels))
    existing = {*(i.name for i in graph.input), *(o.name for o in graph.output)}
    if {spec.name, spec.shape_output} & existing:
        raise EngineUnavailable(f"model already has a tensor named {spec.name!r}")
    p = f"/steadyvoice/noise_{k}"
    graph.input.append(
        helper.make_tensor_value_info(
            spec.name,
            TensorProto.FLOAT,
            [f"{spec.name}_batch", *spec.channels, f"{spec.name}_length"],
        )
    )
    graph.output.append(
        helper.make_tensor_value_info(spec.shape_output, TensorProto.INT64, [len(shape)])
    )
    starts = np.zeros(len(shape), dtype=np.int64)
    graph.initializer.append(numpy_helper.from_array(starts, f"{p}/starts"))
    if node.op_type == "RandomNormal":
        fixed = np.asarray(shape, dtype=np.int64)
        graph.initializer.append(numpy_helper.from_array(fixed, f"{p}/fixed_shape"))
        shape_node = helper.make_node("Identity", [f"{p}/fixed_shape"], [spec.shape_output])
    else:
        shape_node = helper.make_node("Shape", [node.input[0]], [spec.shape_output])
    scale, mean = float(attrs.get("scale", 1.0)), float(attrs.get("mean", 0.0))
    sliced = node.output[0] if (scale, mean) == (1.0, 0.0) else f"{p}/standard"
    nodes = [
        shape_node,
        helper.make_node("ConstantOfShape", [spec.shape_output], [f"{p}/zeros"]),
        helper.make_node("Concat", [spec.name, f"{p}/zeros"], [f"{p}/padded"], axis=-1),
        helper.make_node("Slice", [f"{p}/padded", f"{p}/starts", spec.shape_output], [sliced]),
    ]
    if sliced != node.output[0]:
        graph.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), f"{p}/scale"))
        graph.initializer.append(numpy_helper.from_array(np.array(mean, np.float32), f"{p}/mean"))
        nodes.append(helper.make_node("Mul", [sliced, f"{p}/scale"], [f"{p}/scaled"]))
        nodes.append(helper.make_node("Add", [f"{p}/scaled", f"{p}/mean"], [node.output[0]]))
    return spec, nodes


def make_noise(key: Sequence[int], channels: Sequence[int], length: int) -> FloatAudio:
    """Standard-normal noise ``[1, *channels, length]``; time step ``t`` never depends on length."""
    width = math.prod(channels)
    rng = np.random.default_rng(list(key))
    draws = rng.standard_normal((length, width), dtype=np.float32)
    return np.ascontiguousarray(draws.T).reshape(1, *channels, length)


def run_seeded(
    session: Any,
    feeds: Mapping[str, Any],
    noise_inputs: Sequence[NoiseInput],
    key: Sequence[int],
    first_length: int,
) -> FloatAudio:
    """Run the patched model with noise from ``key``; re-run if a first guess was too short.

    Noise input ``k`` uses the stream ``default_rng([*key, k])``. A noise's length can depend on
    another noise's values (frames depend on the sampled durations) but never on its own, so each
    re-run settles at least one more level of that chain and ``len(noise_inputs) + 1`` runs suffice.
    Lengths only grow, and any length >= the needed one gives the same draws (prefix property).
    """
    lengths = [first_length] * len(noise_inputs)
    output_names = [session.get_outputs()[0].name, *(n.shape_output for n in noise_inputs)]
    for _ in range(len(noise_inputs) + 1):
        noise = {
            n.name: make_noise([*key, k], n.channels, lengths[k])
            for k, n in enumerate(noise_inputs)
        }
        audio, *shapes = session.run(output_names, {**feeds, **noise})
        needed = [int(shape[-1]) for shape in shapes]
        if all(need <= have for need, have in zip(needed, lengths, strict=True)):
            return np.asarray(audio, dtype=np.float32)
        lengths = [max(need, have) for need, have in zip(needed, lengths, strict=True)]
    raise EngineError("noise lengths did not converge", lengths=lengths)
