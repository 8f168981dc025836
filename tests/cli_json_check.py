#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the JSON that ctml commands print (tests/cli_surface.cmake).

usage: cli_json_check.py MODE FILE
  odd-text FILE   writes a training text of control bytes, quotes, backslashes
                  and bytes outside UTF-8
  devices|demo|bench|decode|check|train|sample FILE   parses FILE (train: one
                  object per line) and checks the fields scripts read
"""
import json
import random
import sys

ODD = b'ab"\\\x01\x7f\xff\xc3\n'


def main(mode, path):
    if mode == "odd-text":
        r = random.Random(1)
        with open(path, "wb") as f:
            f.write(bytes(r.choice(ODD) for _ in range(4000)))
        return
    if mode == "train":
        e = [json.loads(line) for line in open(path)]
        assert e[0]["event"] == "start" and e[-1]["event"] == "done", e
        s = [x for x in e if x["event"] == "step"]
        assert len(s) == 4, s
        assert all(x["lr"] > 0 and x["grad_norm"] > 0 and x["ms_per_step"] > 0 for x in s), s
        assert "val_loss" in s[1] and "val_loss" not in s[0], s
        print("json-ok")
        return
    d = json.load(open(path))
    if mode == "devices":
        assert [b for b in d["backends"] if b["name"] == "cpu" and b["present"]], d
    elif mode == "demo":
        assert d["composed_equals_direct"] is True and len(d["p_next_given_I"]) == 5, d
    elif mode == "bench":
        r = d["results"][0]
        assert r["backend"] == "cpu" and r["ms_median"] > 0 and r["mfu"] is None, r
        assert r["plan"]["launches"] > 0, r
        assert d["model"]["config"] == "custom (from tiny)", d
    elif mode == "decode":
        assert [r["path"] for r in d["results"]] == ["cache", "no cache"], d
    elif mode == "check":
        assert d["passed"] and d["nodes"] and d["update"]["agree"], d
        assert d["first_divergent"] is None, d
    elif mode == "sample":
        assert d["checkpoint"]["step"] == 4 and d["seed"] == 2**64 - 1, d
        assert len(d["samples"]) == 2 and all(len(x) == 300 for x in d["samples"]), d
        # every byte of the text, escaped as one character (\u00XX outside UTF-8)
        allowed = set(ODD.decode("latin-1"))
        assert set("".join(d["samples"])) <= allowed, d["samples"]
    else:
        sys.exit("unknown mode " + mode)
    print("json-ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
