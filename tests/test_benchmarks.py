"""Every benchmark's `--smoke` mode, on the networks the composed experiments build: a benchmark
that no longer matches what training builds fails here, not on `make bench`."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from helpers import TINY, compose_with
from PIL import Image

from benchmarks import (
    augmentations,
    common,
    decode,
    finetune_documents,
    heldout,
    long_lines,
    overfit_pages,
    pages,
    predict,
    quality,
    serve,
    train,
)
from text_recognizer.data.synthetic import corpus
from text_recognizer.data.synthetic.lines import SyntheticLines

if TYPE_CHECKING:
    from tiny_recognizer import Tiny


@pytest.fixture(autouse=True)
def torch_threads() -> Iterator[None]:
    """Benchmarks set torch's thread count; the next test gets the one it had."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def smoke(main: Callable[[list[str]], None], out: Path, name: str, *argv: str) -> dict[str, Any]:
    """`main(--smoke --out OUT ARGV)`'s results, which must record the machine."""
    main(["--smoke", "--out", str(out), *argv])
    results = json.loads((out / f"{name}.json").read_text())
    machine = results.get("machine") or results["machine_after"]
    assert {"cpu_model", "avx2", "avx512_bf16", "native_bf16"} <= set(machine)
    return results


def image(*overrides: str) -> list[int]:
    """The input size the experiment's datamodule config states."""
    datamodule = compose_with(*overrides).datamodule
    return [1, datamodule.height, datamodule.width]


def test_a_smoke_run_writes_nothing_unless_told_where() -> None:
    parser = argparse.ArgumentParser()
    common.add_arguments(parser)
    assert common.results_folder(parser.parse_args(["--smoke"])) is None
    assert common.results_folder(parser.parse_args([])) == common.RESULTS
    assert common.results_folder(parser.parse_args(["--smoke", "--out", "x"])) == Path("x")


def test_cpu_info_reads_the_first_cpu(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\nflags\t\t: fpu sse avx2 fma\n\n"
        "processor\t: 1\nmodel name\t: Some CPU @ 2.0GHz\nflags\t\t: fpu sse avx2 fma\n"
    )
    info = common.cpu_info(cpuinfo)
    assert info == {"cpu_model": "Some CPU @ 2.0GHz", "avx2": True, "avx512_bf16": False}
    assert common.cpu_info(tmp_path / "missing") == {
        "cpu_model": None,
        "avx2": None,
        "avx512_bf16": None,
    }


@pytest.mark.parametrize("overrides", [common.LINES, common.PARAGRAPHS])
def test_experiments_are_what_their_configs_compose(overrides: tuple[str, ...]) -> None:
    composed = common.experiment(*overrides)
    assert composed.describe()["overrides"] == list(overrides)
    assert composed.describe()["image"] == image(*overrides)
    assert composed.network().max_output_length == composed.max_output_length


@pytest.mark.slow
def test_decode_smoke(tmp_path: Path) -> None:
    results = smoke(decode.main, tmp_path, "decode")
    assert results["line"]["image"] == image(*common.LINES)
    assert results["paragraph"]["image"] == image(*common.PARAGRAPHS)
    eager = {f"eager_{name}" for name in (*common.PRECISIONS, "int8")}
    assert set(results["paragraph"]["runtimes"]) == eager  # ONNX: tests/test_export.py
    assert "onnx_speedup" not in results["paragraph"]


@pytest.mark.slow
def test_train_smoke(tmp_path: Path) -> None:
    results = smoke(train.main, tmp_path, "train")
    for name, overrides in train.NETWORKS.items():
        assert results[name]["image"] == image(*overrides)
        assert results[name]["fp32_samples_per_s"] > 0
        assert results[name]["batches"] == "worst case"  # no data is built here


@pytest.mark.slow
def test_train_times_a_real_run_of_main(tiny_lines: SyntheticLines) -> None:
    """`main.py` in its own process, its steps after the first timed by the callback it adds."""
    seconds = train.real_run("fp32", steps=3, skip=1, overrides=TINY)
    assert 0 < seconds < 60


@pytest.mark.slow
def test_predict_smoke(tmp_path: Path) -> None:
    results = smoke(predict.main, tmp_path, "predict")
    runtimes = {(row["kind"], row["runtime"]) for row in results["rows"]}
    assert runtimes == {
        (kind, runtime) for kind in predict.KINDS for runtime in ("eager", "eager_int8")
    } | {("lines", "ctc"), ("lines", "ctc_int8")}  # the page network has no CTC head


@pytest.mark.slow
def test_overfit_pages_smoke(tmp_path: Path) -> None:
    results = smoke(overfit_pages.main, tmp_path, "overfit_pages")
    assert results["image"] == image(*common.PARAGRAPHS, "datamodule=synthetic_paragraphs")
    assert "full_page_cer" in results["history"][-1]


@pytest.mark.slow
def test_quality_smoke(tmp_path: Path, tiny_checkpoint: Tiny) -> None:
    results = smoke(
        quality.main, tmp_path, "quality", "--checkpoint", str(tiny_checkpoint.checkpoint)
    )
    assert results["greedy"]["lines"] == quality.SMOKE.lines
    assert results["lm"]["order"] == quality.SMOKE.lm_order
    assert results["decoders"] == ["joint", "ctc"]  # the tiny reader has a CTC head
    assert results["ctc_beam5_lm"]["lines"] == quality.SMOKE.lines
    assert set(results["test_split"]) >= {"fp32", "int8", "ctc_fp32", "ctc_int8"}


@pytest.mark.slow
def test_serve_smoke(tmp_path: Path, tiny_checkpoint: Tiny, tiny_lines: SyntheticLines) -> None:
    results = smoke(serve.main, tmp_path, "serve", "--checkpoint", str(tiny_checkpoint.checkpoint))
    assert len(results["rows"]) == 2 * len(serve.SMOKE.users) + 1  # each mode, then bad inputs
    assert results["targets"]["no_server_ended"]
    assert results["decoder"] == results["in_process"]["decoder"] == "ctc"  # the servers' default


@pytest.mark.slow
def test_augmentations_smoke(tmp_path: Path) -> None:
    results = smoke(augmentations.main, tmp_path, "augmentations", "--runs", str(tmp_path))
    assert [arm["arm"] for arm in results["arms"]] == ["none"]


@pytest.mark.slow
def test_finetune_documents_smoke(tmp_path: Path, tiny_checkpoint: Tiny) -> None:
    checkpoint = str(tiny_checkpoint.checkpoint)
    argv = ("--checkpoint", checkpoint, "--runs", str(tmp_path / "runs"))
    results = smoke(finetune_documents.main, tmp_path, "finetune_documents", *argv)
    assert [row["lines"] for row in results["rows"]] == [2]


@pytest.mark.slow
def test_heldout_sentences_need_the_corpus() -> None:
    with pytest.raises(SystemExit, match="needs the English sentences: run `make fonts`"):
        heldout.datamodule("sentences", smoke=True)


def test_heldout_smoke(tmp_path: Path, tiny_checkpoint: Tiny, data_root: Path) -> None:
    """The tiny model reads the 48 px sets through its 32 px stem, badly (it knows six lines):
    what is checked is that every set is read and reported, not how well. The sentences come
    from a corpus file of sixteen made-up addresses, in the format `make fonts` writes."""
    text = corpus.path(data_root)
    text.parent.mkdir(parents=True)
    text.write_text("".join(f"{i}_address\tThe state of the union is {i}.\n" for i in range(16)))
    checkpoint = Path(shutil.copy(tiny_checkpoint.checkpoint, tmp_path))  # reports go beside it
    argv = ("--checkpoint", str(checkpoint))
    smoke(heldout.main, tmp_path, "heldout", *argv)
    results = smoke(heldout.main, tmp_path, "heldout", *argv, "--name", "again", "--sets", "plain")
    entries = results["entries"]
    assert set(entries) == {common.checkpoint_name(checkpoint), "again"}  # kept across calls
    assert set(entries["again"]) == {"checkpoint", "plain"}
    entry = entries[common.checkpoint_name(checkpoint)]
    for name in heldout.SETS:
        report = json.loads((tmp_path / f"tiny-heldout-{name}" / "report.json").read_text())
        assert report["samples"] == heldout.datamodule(name, smoke=True).config.test_size
        assert entry[name]["cer"] == round(report["cer"], 4) and entry[name]["per_family"]


@pytest.mark.slow
def test_pages_smoke(tmp_path: Path, tiny_checkpoint: Tiny, data_root: Path) -> None:
    """Two composed pages found by kraken's own model, read by the tiny model, and timed
    beside `kraken segment -bl`; one page of the scan-like set drawn."""
    pytest.importorskip("kraken")
    argv = ("--checkpoint", str(tiny_checkpoint.checkpoint), "--scans", str(tmp_path / "o"))
    results = smoke(pages.main, tmp_path, "pages", *argv)
    assert results["pages"] == 2 and results["true_lines"] >= 2
    assert 0 <= results["precision"] <= 1 and 0 <= results["recall"] <= 1
    assert results["cer_lines_then_read"] >= 0 and results["cer_true_lines"] >= 0
    assert results["seconds_a_page"] > 0 and results["kraken_segment_seconds_a_page"] > 0
    assert Image.open(tmp_path / "o" / "page0.overlay.png").mode == "RGB"
    assert (tmp_path / "o" / "page0.txt").is_file() and (tmp_path / "o" / "page0.xml").is_file()


def test_long_lines_smoke(tmp_path: Path, tiny_checkpoint: Tiny, data_root: Path) -> None:
    argv = ("--checkpoint", str(tiny_checkpoint.checkpoint))
    results = smoke(long_lines.main, tmp_path, "long_lines", *argv)
    assert results["lines"] == 2 and results["joined_lines"] >= 4
    reads = {"shrunk", "windows", "windows_ctc", "wide", "wide_ctc", "source"}
    assert set(results["reads"]) == reads
    assert all(read["cer"] >= 0 for read in results["reads"].values())
