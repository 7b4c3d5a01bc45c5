"""Compiled inference (fastnn.mlp_forward, fastnn.cnn1d_forward through Sequential.predict_logits)
beside the layer-by-layer path it replaces, on every backend, and PyTorch's torch.no_grad() forward.

Groups ("predict_logits <network> <rows> <dtype>"), each on the same seeded inputs and weights:
- "784-128-10 10000 rows": the seed MLP on MNIST-sized inputs (ReLU);
- "64-128-10 1797 rows": the digits MLP on the whole digits set;
- "convbase 10000x1x40": MNIST-1D's ConvBase (fastnn.nn.conv1d_net defaults, CNN1DClassifier's).
Entries:
- one per backend (role backend): model.predict_logits(X), the compiled forward;
- "<backend>-layers" (role baseline): model.layer_logits(X), Linear/ReLU/Conv1D layers one by one
  in chunks of 4096 rows, what predict_logits ran before;
- "torch" (role external, skipped without torch): the same network as torch.nn modules with the same
  weights, under torch.no_grad(), 2 threads, on a tensor sharing X's memory.

Target (never asserted): each backend's compiled forward >= 3x faster than its own layer path and no
slower than torch. Plain `pytest` runs each entry once, untimed, and checks the logits against the
'numpy' backend's.
"""
import numpy as np
import pytest

import fastnn
from fastnn import nn
from fastnn.experiments import torch_cnn

from bench_kernels import assert_close, label, run

BACKENDS = fastnn.available_backends()
TARGET = ">= 3x faster than <backend>-layers and no slower than torch"
NETWORKS = {
    "784-128-10": dict(kind="dense", sizes=[784, 128, 10], rows=10000),
    "64-128-10": dict(kind="dense", sizes=[64, 128, 10], rows=1797),
    "convbase": dict(kind="conv", input_shape=(1, 40), n_classes=10, rows=10000),
}


def build(name, dtype, backend=None):
    """The network `name` of NETWORKS in dtype (seeded weights) and its inputs X."""
    spec = NETWORKS[name]
    rng = np.random.default_rng(0)
    if spec["kind"] == "dense":
        model = nn.mlp(spec["sizes"], dtype=dtype, random_state=0, backend=backend)
        X = rng.uniform(0, 1, (spec["rows"], spec["sizes"][0])).astype(dtype)
    else:
        model = nn.conv1d_net(spec["input_shape"], spec["n_classes"], dtype=dtype, random_state=0, backend=backend)
        X = rng.standard_normal((spec["rows"], *spec["input_shape"])).astype(dtype)
    return model, X


def _group(benchmark, name, dtype, impl, role="backend"):
    spec = NETWORKS[name]
    rows = f"{spec['rows']}x{'x'.join(map(str, spec['input_shape']))}" if spec["kind"] == "conv" else \
        f"{spec['rows']} rows"
    label(benchmark, f"predict_logits {name}", rows, dtype, impl, role, target=TARGET)


CASES = [(name, dtype) for name in NETWORKS for dtype in ("float32", "float64")]


@pytest.fixture(scope="module")
def references():
    """The 'numpy' backend's logits per (network, dtype), computed once outside any timed call."""
    cache = {}

    def get(name, dtype):
        if (name, dtype) not in cache:
            model, X = build(name, dtype, "numpy")
            cache[name, dtype] = model.predict_logits(X)
        return cache[name, dtype]

    return get


@pytest.mark.parametrize("impl", BACKENDS)
@pytest.mark.parametrize("name, dtype", CASES)
def bench_predict_logits(benchmark, references, name, dtype, impl):
    model, X = build(name, dtype, impl)
    _group(benchmark, name, dtype, impl)
    logits = run(benchmark, lambda: model.predict_logits(X))
    assert_close(logits, references(name, dtype), "logits")


@pytest.mark.parametrize("impl", BACKENDS)
@pytest.mark.parametrize("name, dtype", CASES)
def bench_layer_logits(benchmark, references, name, dtype, impl):
    model, X = build(name, dtype, impl)
    _group(benchmark, name, dtype, f"{impl}-layers", "baseline")
    logits = run(benchmark, lambda: model.layer_logits(X))
    assert_close(logits, references(name, dtype), "logits")


def torch_dense(torch, model, dtype):
    """model (Linear, ReLU, ..., Linear) as torch.nn.Sequential with the same weights, in dtype."""
    modules, torch_dtype = [], getattr(torch, np.dtype(dtype).name)
    for layer in model.layers:
        if isinstance(layer, nn.Linear):  # made in dtype before the copy: float64 weights stay exact
            linear = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch_dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.params["W"].T)))
                linear.bias.copy_(torch.from_numpy(layer.params["b"]))
            modules.append(linear)
        else:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


@pytest.mark.parametrize("name, dtype", CASES)
def bench_predict_logits_torch(benchmark, references, torch, name, dtype):
    model, X = build(name, dtype, "numpy")
    _group(benchmark, name, dtype, "torch", "external")
    network = torch_dense(torch, model, dtype) if NETWORKS[name]["kind"] == "dense" else torch_cnn(torch, model, dtype)
    tensor = torch.from_numpy(X)

    def forward():
        with torch.no_grad():
            return network(tensor).numpy()

    logits = run(benchmark, forward)
    assert_close(logits, references(name, dtype), "logits")
