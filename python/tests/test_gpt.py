# SPDX-License-Identifier: MIT
"""The GPT: build, forward loss, training, decoding and checkpoints."""
import numpy as np
import pytest

import ctml

CFG = ctml.GPTConfig(vocab=11, block=8, layers=1, heads=2, width=16)


def batch(B=2, T=8, seed=0):
    rng = np.random.default_rng(seed)
    seq = rng.integers(0, CFG.vocab, size=(B, T + 1)).astype(np.int32)
    return seq[:, :-1], seq[:, 1:]


def test_gpt_parameters_and_forward_loss():
    g = ctml.GPT(CFG, seed=1)
    names = [p.name for p in g.params]
    assert names[:2] == ["wte", "wpe"] and names[-1] == "head.w"
    assert g.param("wte").shape == (11, 16) and g.param("h0.mlp.w1").shape == (16, 64)
    assert g.numel == sum(p.numel for p in g.params)
    np.testing.assert_array_equal(g.param("h0.ln1.gain").value, np.ones(16))
    x, y = batch()
    loss = g.forward_loss(x, y)
    assert abs(loss - np.log(CFG.vocab)) < 0.1  # small init: close to uniform
    logits = g.logits(x)
    assert logits.shape == (2, 8, 11)
    z = logits.astype(np.float64)
    lse = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
    want = (lse - np.take_along_axis(z, y[..., None], -1)[..., 0]).mean()
    assert abs(loss - want) < 1e-5
    with pytest.raises(KeyError, match="no parameter 'nope'"):
        g.param("nope")


def test_gpt_training_on_cpu_reduces_loss():
    g = ctml.GPT(CFG, seed=1)
    x, y = batch()
    t = g.trainer(2, 8, "cpu", ctml.Optimizer.adamw(1e-2))
    t.set_inputs(x, y)
    first = t.step()
    t.step(19)
    assert t.steps == 20
    assert t.eval() < first - 0.5
    assert np.isfinite(t.last_grad_norm) and t.last_lr == pytest.approx(1e-2)
    before = g.param("wte").value
    t.store_params()
    assert not np.array_equal(before, g.param("wte").value)
    assert g.forward_loss(x, y) == pytest.approx(t.eval(), abs=1e-5)


def test_gpt_training_on_device_agrees_with_cpu(device):
    x, y = batch()
    losses = []
    for b in ("cpu", device):
        g = ctml.GPT(CFG, seed=1)
        t = g.trainer(2, 8, b, ctml.Optimizer.adamw(1e-2))
        t.set_inputs(x, y)
        t.step(3)
        losses.append(t.eval())
    assert losses[1] == pytest.approx(losses[0], abs=1e-4)


def test_decoder_cached_equals_uncached_and_logits():
    g = ctml.GPT(CFG, seed=3)
    prompt = [1, 2, 3, 4]
    full = g.logits([prompt])[0, -1]
    a, b = g.decoder("cpu"), g.decoder("cpu", cache=False)
    la, lb = a.append(prompt), b.append(prompt)
    assert la.shape == (1, 11) and len(a) == 4
    np.testing.assert_allclose(la[0], full, atol=1e-5)
    np.testing.assert_allclose(la, lb, atol=1e-5)
    np.testing.assert_allclose(a.append([5]), b.append([5]), atol=1e-5)
    greedy = g.generate(prompt, 6, temperature=0)
    assert len(greedy) == 6 and all(0 <= t < 11 for t in greedy)
    assert g.generate(prompt, 6, seed=7) == g.generate(prompt, 6, seed=7)
    with pytest.raises(ctml.RangeError):
        a.append([99])


def test_checkpoint_round_trip(tmp_path):
    g = ctml.GPT(CFG, seed=1)
    x, y = batch()
    t = g.trainer(2, 8, "cpu", ctml.Optimizer.adamw(1e-2))
    t.set_inputs(x, y)
    t.step(5)
    path = tmp_path / "gpt.safetensors"
    g.save(path, t, metadata={"note": "test"})

    with ctml.SafetensorsFile(path) as f:
        assert f.meta("config.width") == "16" and f.meta("note") == "test"
        assert f.meta("step") == "5" and f.meta("absent") is None
        assert "optim.m.wte" in f and f["wte"].shape == (11, 16)

    h = ctml.GPT.load(path)
    assert h.config == CFG
    for name, v in g.state_dict().items():
        np.testing.assert_array_equal(h.param(name).value, v)
    assert h.forward_loss(x, y) == pytest.approx(g.forward_loss(x, y), abs=0)

    # resuming continues bit for bit
    t.step(3)
    u = h.trainer(2, 8, "cpu", ctml.Optimizer.adamw(1e-2))
    h.load_optimizer_state(path, u)
    u.set_inputs(x, y)
    assert u.steps == 5
    u.step(3)
    assert u.eval() == t.eval()


def test_safetensors_tensors_and_errors(tmp_path):
    path = tmp_path / "t.safetensors"
    ts = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.float32(2.5),
          "v": np.ones(4)}
    ctml.save_safetensors(path, ts, {"k": "v"})
    back = ctml.load_safetensors(path)
    assert list(back) == ["a", "s", "v"]
    for k in ts:
        np.testing.assert_array_equal(back[k], ts[k])
        assert back[k].shape == np.shape(ts[k])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ctml.FileError) as e:
        ctml.load_safetensors(path)
    assert str(path) in str(e.value)
    plain = tmp_path / "plain.safetensors"
    ctml.save_safetensors(plain, {"a": np.zeros(2)})
    with pytest.raises(ValueError, match="no config"):
        ctml.GPT.load(plain)


def test_load_a_ctml_train_checkpoint(tmp_path):
    import subprocess
    from conftest import find_cli
    cli = find_cli()
    if cli is None:
        pytest.skip("no ctml tool found (set CTML_CLI, put ctml on PATH, or build it in build/)")
    data = tmp_path / "text.txt"
    data.write_text("the quick brown fox jumps over the lazy dog\n" * 20)
    out = tmp_path / "run"
    subprocess.run([cli, "train", "--config", "micro", "--data", str(data), "--out", str(out),
                    "--steps", "2", "--layers", "1", "--width", "16", "--heads", "2",
                    "--block", "16", "--batch", "2", "--backend", "cpu"],
                   check=True, capture_output=True, text=True)
    path = out / "checkpoint.safetensors"
    g = ctml.GPT.load(path)
    assert (g.config.layers, g.config.width, g.config.heads, g.config.block) == (1, 16, 2, 16)
    with ctml.SafetensorsFile(path) as f:
        vocab = ctml.Vocab.from_bytes(bytes.fromhex(f.meta("vocab")))
        np.testing.assert_array_equal(g.param("head.w").value, f["head.w"])
    assert vocab.size == g.config.vocab
    ids = vocab.encode("the lazy dog")
    assert np.isfinite(g.forward_loss(ids[None, :-1], ids[None, 1:]))
    text = vocab.decode(g.generate(ids, 8, temperature=0.8, seed=1))
    assert len(text) == 8
