# SPDX-License-Identifier: MIT
"""Objects, morphisms, composition and its errors."""
import numpy as np
import pytest

import ctml
from ctml import Object, Role


def test_objects_are_checked_and_printed():
    assert str(Object.matrix(Role.HIDDEN, 7, 4)) == "HIDDEN f32[7,4]"
    assert str(Object.tokens(3)) == "TOKENS i32[3]"
    assert Object.loss().shape == ()
    assert Object.seq(2, 3, 4).numel == 24
    with pytest.raises(ctml.ShapeError, match="LOSS is a scalar"):
        Object(Role.LOSS, (2,))
    with pytest.raises(ctml.ShapeError, match="dimension 0 is 0"):
        Object(Role.HIDDEN, (0, 3))


def test_then_and_compose_agree_and_run():
    E = ctml.Param("E", (5, 4)).init_book(1)
    W = ctml.Param("W", (4, 5)).init_book(2)
    emb = ctml.embedding(Object.tokens(2), E)
    lin = ctml.linear(Object.matrix(Role.HIDDEN, 2, 4), W, None, out_role=Role.LOGITS)
    f = emb >> lin
    assert f == (lin << emb) == ctml.compose(lin, emb) == ctml.then(emb, lin)
    assert f.dom == (Object.tokens(2),)
    assert f.cod == (Object.matrix(Role.LOGITS, 2, 5),)
    assert f.node_count == 2
    x = np.array([1, 3], np.int32)
    np.testing.assert_allclose(f(x), E.value[x] @ W.value, rtol=1e-6, atol=1e-7)


def test_tensor_product_side_by_side():
    a, b = Object.matrix(Role.HIDDEN, 2, 3), Object.tokens(4)
    f = ctml.identity(a) & ctml.identity(b)
    assert f.dom == (a, b) and f.cod == (a, b)
    assert ctml.identity(a, b) == f
    g = ctml.copy(a) >> ctml.add(a)  # x -> 2x
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y, t = (g & ctml.identity(b))(x, np.arange(4, dtype=np.int32))
    np.testing.assert_array_equal(y, 2 * x)
    np.testing.assert_array_equal(t, np.arange(4))


def test_composition_mismatch_raises_shape_error_with_the_library_message():
    E = ctml.Param("E", (5, 4))
    emb = ctml.embedding(Object.tokens(2), E)            # -> HIDDEN f32[2,4]
    sm = ctml.softmax(Object.matrix(Role.LOGITS, 2, 4))  # LOGITS f32[2,4] -> DIST
    with pytest.raises(ctml.ShapeError) as e:
        emb >> sm
    err = e.value
    assert isinstance(err, ctml.Error)
    assert err.status == "CT_ERR_SHAPE"
    assert "HIDDEN" in err.message and "LOGITS" in err.message
    assert str(err) == err.message


def test_errors_per_status():
    with pytest.raises(ctml.InvalidArgumentError, match="unknown backend 'no-such'"):
        ctml.backend("no-such")
    for info in ctml.backends():
        if not info.present:
            with pytest.raises(ctml.BackendAbsentError):
                ctml.backend(info.name)
    W = ctml.Param("W", (2, 2))
    with pytest.raises(ctml.NonFiniteError):
        W.set([[1, 2], [float("nan"), 4]])
    emb = ctml.embedding(Object.tokens(1), ctml.Param("E", (5, 4)))
    with pytest.raises(ctml.RangeError):
        emb(np.array([7], np.int32))


def test_describe_and_plan_stats():
    a = Object.matrix(Role.HIDDEN, 2, 3)
    f = ctml.copy(a) >> ctml.add(a)
    assert "copy" in f.describe() and "add" in f.describe()
    p = f.compile("cpu")
    assert p.stats().nodes == 2


def test_pair_is_copy_then_tensor():
    a = Object.matrix(Role.HIDDEN, 2, 3)
    W = ctml.Param("W", (3, 3)).init_normal(1.0, 4)
    f, g = ctml.linear(a, W), ctml.gelu(a)
    p = ctml.pair(f, g)
    assert p.dom == (a,) and p.cod == (a, a)
    assert p == ctml.copy(a) >> (f & g)
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    y1, y2 = p(x)
    np.testing.assert_allclose(y1, f(x), atol=1e-6)
    np.testing.assert_allclose(y2, g(x), atol=1e-6)
    with pytest.raises(ValueError, match="same one-object domain"):
        ctml.pair(f, ctml.identity(Object.tokens(2)))
