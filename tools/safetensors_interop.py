#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cross-checks ctml's safetensors files against the reference Python package.

  safetensors_interop.py show PATH    load PATH with safetensors.numpy.load_file and
                                      safe_open; print names, dtypes, shapes, the
                                      float bits of small tensors, and the metadata
  safetensors_interop.py write PATH   write a sample file with safetensors.numpy.save_file
                                      (tensors and metadata listed by `show`)

Needs the `safetensors` and `numpy` packages, e.g.
  python3 -m venv /tmp/stenv && /tmp/stenv/bin/pip install safetensors numpy
"""
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file


def sample():
    """The tensors and metadata `write` saves; deterministic."""
    tensors = {
        "wte": (np.arange(32, dtype=np.float32).reshape(4, 8) - 15.5) / 4,
        "ln.bias": np.array([0.5, -0.0, 1e-40, np.inf, -np.inf], dtype=np.float32),
        "scalar": np.array(3.25, dtype=np.float32),
        "empty": np.zeros((3, 0), dtype=np.float32),
        "blk.0.w": np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4),
    }
    metadata = {
        "format": "np",
        "quote": 'say "hi"\\ok',
        "lines": "one\ntwo\tthree",
        "unicode": "h\u00e9llo \u2713 \U0001F600",
    }
    return tensors, metadata


def bits(a):
    """Float32 values as 8-digit hex bit patterns (exact, NaN payloads included)."""
    return " ".join(f"{int(b):08x}" for b in a.reshape(-1).view(np.uint32))


def show(path):
    tensors = load_file(path)
    with safe_open(path, "np") as f:
        metadata = f.metadata() or {}
        order = list(f.keys())
    print(f"{path}: {len(tensors)} tensors, {len(metadata)} metadata entries")
    for name in order:
        a = tensors[name]
        line = f"tensor {name!r} dtype {a.dtype} shape {list(a.shape)}"
        if a.size <= 32:
            line += f" bits [{bits(a)}]"
        else:
            line += f" sum {float(a.astype(np.float64).sum())!r}"
        print(line)
    for k in sorted(metadata):
        print(f"meta {k!r} = {metadata[k]!r}")


def write(path):
    tensors, metadata = sample()
    save_file(tensors, path, metadata=metadata)
    print(f"wrote {path} with safetensors.numpy.save_file")
    show(path)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("show", "write"):
        sys.stderr.write(__doc__)
        return 2
    (show if argv[1] == "show" else write)(argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
