# SPDX-License-Identifier: MIT
"""Byte vocabularies and batches, traces, and checking one backend against another."""
import numpy as np
import pytest

import ctml
from ctml import Object, Role


def test_vocab_encode_decode_and_batches():
    text = "hello, world\n"
    v = ctml.Vocab(text)
    assert v.size == len(set(text)) and v.symbols == bytes(sorted(set(text.encode())))
    ids = v.encode(text)
    assert ids.dtype == np.int32 and v.decode(ids) == text.encode()
    with pytest.raises(ctml.RangeError, match="byte"):
        v.encode("xyz")
    assert ctml.Vocab.from_bytes(v.symbols).symbols == v.symbols
    x, y = ctml.BatchSampler(ids, seed=5).draw(3, 4)
    assert x.shape == y.shape == (3, 4)
    x2, _ = ctml.BatchSampler(ids, seed=5).draw(3, 4)
    np.testing.assert_array_equal(x, x2)
    for row_x, row_y in zip(x, y):
        s = int(np.flatnonzero((np.lib.stride_tricks.sliding_window_view(ids, 4) == row_x)
                               .all(1))[0])
        np.testing.assert_array_equal(row_y, ids[s + 1:s + 5])
    a, b = ctml.window_pairs([1, 2, 3, 4], 5)
    np.testing.assert_array_equal(a, [1, 2, 3])
    np.testing.assert_array_equal(b, [2, 3, 4])


def test_trace_of_a_plan():
    a = Object.matrix(Role.HIDDEN, 2, 3)
    plan = (ctml.copy(a) >> ctml.add(a)).compile("cpu")
    plan.set_tracing(True)
    plan.forward(np.ones((2, 3), np.float32))
    events = plan.take_trace()
    assert events and all(e.op for e in events)
    assert plan.take_trace() == []


def _gpt_logits():
    g = ctml.GPT(ctml.GPTConfig(vocab=7, block=4, layers=1, heads=2, width=8), seed=2)
    return g, g.logits_morphism(1, 4)


def test_check_cpu_against_cpu_passes():
    g, m = _gpt_logits()
    r = ctml.check(m, "cpu", "cpu", np.array([[1, 2, 3, 4]], np.int32), seed=1)
    assert r.passed and r.entries and all(e.passed for e in r.entries)
    assert any(e.reverse for e in r.entries)


def test_check_device_against_cpu(device):
    g, m = _gpt_logits()
    r = ctml.check(m, device, "cpu", np.array([[1, 2, 3, 4]], np.int32), seed=1)
    assert r.passed, [e for e in r.entries if not e.passed][:1]


def test_decode_morphism_over_caches():
    g, _ = _gpt_logits()
    c = g.config
    caches = [ctml.Param.cache(f"c{i}", 1, c.heads, c.block, c.width // c.heads)
              for i in range(2 * c.layers)]
    m = g.decode_morphism(caches, 1, 4)
    assert [o.role for o in m.dom] == [Role.TOKENS, Role.TOKENS]
    toks = np.array([[1, 2, 3, 4]], np.int32)
    out = m(toks, np.arange(4, dtype=np.int32)[None])
    np.testing.assert_allclose(out, g.logits(toks), atol=1e-5)
