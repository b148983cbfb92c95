"""The GPU benchmark (pipelines/benchmark_gpu.py, reformer/benchmarks/gpu.py and
gpu_sections.py), run on the CPU: the same code as on a card, with tiny shapes. Its CUDA-only
parts (flash kernel, device memory, device time) need a GPU; the checks here are what the CPU
can show."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from reformer.benchmarks import gpu, gpu_sections
from reformer.benchmarks.defaults import GPU_QUICK

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))  # `pipelines` is the stage scripts' folder, not an installed package

from pipelines import benchmark_gpu  # noqa: E402


def run_quick(tmp_path, *extra):
    out = tmp_path / "gpu.json"
    rc = benchmark_gpu.main(["--device", "cpu", "--quick", "--out", str(out), *extra])
    return rc, out


def test_quick_cpu_run_measures_every_section(tmp_path, capsys):
    rc, out = run_quick(tmp_path, "--peak-tflops", "0.5")
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["dtype"] == "bfloat16"
    cfg = GPU_QUICK["attention"]
    att = report["attention"]["results"]
    expected = {("flash", None)} | {("lsh", r) for r in cfg["n_hashes"]}
    for length in cfg["lengths"]:
        got = {(e["implementation"], e["n_hashes"]) for e in att if e["length"] == length}
        assert got == expected
    for e in att:
        assert e["status"] == "ok" and e["batch"] * e["length"] == cfg["tokens_per_step"]
        assert 0 < e["time_s"]["min"] <= e["time_s"]["median"] <= e["time_s"]["max"]
        assert e["peak_bytes"] is None  # no device allocator on the CPU
    assert report["longest"]["longest"] == GPU_QUICK["longest"]["max_length"]
    assert all(t["status"] == "ok" and t["step_s"] > 0 for t in report["longest"]["tries"])

    u = report["utilisation"]
    shape = GPU_QUICK["utilisation"]
    n, d, d_ff = shape["length"] * shape["batch"], shape["d_model"], shape["d_ff"]
    # Feed-forward: two linears, each 2 n d d_ff FLOPs forward and twice that backward
    # (input and weight gradients).
    assert u["feed_forward"]["flops"] == 12 * n * d * d_ff
    # Attention: at least its three d x d projections the same way, plus the chunked scores.
    assert u["attention"]["flops"] > 18 * n * d * d
    for part in ("attention", "feed_forward"):
        p = u[part]
        assert p["tflops"] == pytest.approx(p["flops"] / p["time_s"] / 1e12)
        assert p["fraction_of_peak"] == pytest.approx(p["tflops"] / 0.5)
    table = capsys.readouterr().out
    assert "| length | flash | LSH-1 | LSH-2 | flash / LSH-1 |" in table
    longest = GPU_QUICK["longest"]["max_length"]
    assert f"Longest trainable length: {longest:,} tokens." in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_without_cuda_it_stops_with_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert benchmark_gpu.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device cuda: no CUDA device") and "\n" not in err
    assert not out.exists()


def test_cpu_may_not_write_the_committed_gpu_file(capsys):
    committed = benchmark_gpu.ROOT / benchmark_gpu.DEFAULT_OUT
    before = committed.read_bytes() if committed.exists() else None
    assert benchmark_gpu.main(["--device", "cpu", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "--device cpu may not write metrics/benchmark-gpu.json" in err
    assert (committed.read_bytes() if committed.exists() else None) == before


def test_bad_device_and_section_are_named(tmp_path, capsys):
    assert benchmark_gpu.main(["--device", "tpu", "--out", str(tmp_path / "x.json")]) == 2
    assert "--device tpu" in capsys.readouterr().err
    rc, _ = run_quick(tmp_path, "--sections", "attention,speed")
    assert rc == 2 and "--sections speed" in capsys.readouterr().err
    rc, _ = run_quick(tmp_path, "--peak-tflops", "0")
    assert rc == 2 and "--peak-tflops 0.0: must be > 0" in capsys.readouterr().err


def test_a_series_stops_after_running_out_of_memory(monkeypatch):
    # The first LSH-2 step that runs out of memory ends that series; the others go on.
    real = gpu.attention_case

    def case(impl, length, batch, device, dtype, n_hashes=1, **kw):
        if impl == "lsh" and n_hashes == 2 and length >= 256:
            return {"implementation": impl, "n_hashes": 2, "length": length,
                    "status": "out of memory"}  # fmt: skip
        return real(impl, length, batch, device, dtype, n_hashes=n_hashes, **kw)

    monkeypatch.setattr(gpu, "attention_case", case)
    cfg = {**GPU_QUICK["attention"], "lengths": [128, 256, 512]}
    result = gpu_sections.run_attention(cfg, torch.device("cpu"), torch.bfloat16, repeats=1)
    lsh2 = [e for e in result["results"] if e["n_hashes"] == 2]
    assert [e["status"] for e in lsh2] == ["ok", "out of memory", "skipped"]
    assert lsh2[2]["reason"] == "out of memory at length 256"
    others = [e for e in result["results"] if e["n_hashes"] != 2]
    assert all(e["status"] == "ok" for e in others) and len(others) == 6


def test_out_of_memory_is_recorded_and_other_errors_raise():
    cpu = torch.device("cpu")
    result: dict = {"status": "ok"}
    with gpu._guarded(result, cpu):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert result["status"] == "out of memory"
    with pytest.raises(RuntimeError, match="shape mismatch"), gpu._guarded({}, cpu):
        raise RuntimeError("shape mismatch")


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989.4),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.4),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA A10", 125.0),
        ("NVIDIA L40S", 362.1),
        ("NVIDIA L4", 121.0),
        ("Some Other Card", None),
    ],
)
def test_peak_table_matches_the_most_specific_name(name, tflops):
    assert gpu.peak_bf16_tflops(name) == tflops
