"""`text-recognizer`: read images with a trained model, evaluate it, export it, serve it.

text-recognizer predict --checkpoint CKPT IMAGE...   print `path<TAB>text` per image (a folder:
                                                     its image files, sorted; newlines as \\n);
                                                     --json: JSON lines with each image's seconds
text-recognizer predict --model DIR IMAGE...         the same with exported files
text-recognizer predict ... --beam K [--lm LM.arpa   beam search of width K, with a character
    --lm-weight W] [--quantize int8]                 language model (shallow fusion; default:
                                                     the default LM where it is built, and
                                                     beam 5 for a line model; --beam 1 is
                                                     greedy, --lm none no LM); int8 linear
                                                     layers (eager)
text-recognizer predict ... --decoder ctc            read with the CTC head alone: best path, or
                                                     its prefix beam search with --beam K (also
                                                     evaluate, export and serve)
text-recognizer predict --checkpoint CKPT PAGE.xml   read every line of a PAGE or ALTO file and
    --out DIR                                        write a copy with the readings (text and
                                                     confidence) into DIR, the rest unchanged
text-recognizer predict --checkpoint CKPT page.jpg   a page image: find its lines (the pages
    --out DIR [--format page|alto] [--overlay]       extra), read them, write DIR/page.txt,
    [--segment lines|regions]                        DIR/page.xml (PAGE 2019 or ALTO v4) and
                                                     the page drawn with its readings; a
                                                     paragraph checkpoint reads regions whole
text-recognizer evaluate --checkpoint CKPT           CER/WER on the test split of the model's
    [--datamodule NAME] [--out DIR] [--worst N]      datamodule (or NAME's); writes report.json
                                                     and predictions.png
text-recognizer export --checkpoint CKPT             the encoder and a cached decoding step
    --format onnx|torchscript --out DIR              for runtimes outside Python, and model.json
    (or --format checkpoint) [--quantize int8]       (or the checkpoint; int8 weights), and its
                                                     card, README.md
text-recognizer push --model DIR --to hf:USER/REPO   upload an exported folder to the Hub
    (or --to wandb:[ENTITY/]PROJECT)                 or as a W&B model artifact
text-recognizer lm train [CORPUS.txt] --out LM.arpa  a character n-gram model (--order 6) of a
    [--order N] [--synthetic-lines N]                text file, one sentence a line, or of the
    [--if-missing]                                   synthetic text source without one; without
                                                     either, the default LM (data/lm/), which
                                                     predict and evaluate fuse into a beam
text-recognizer serve --checkpoint CKPT | --model DIR
    [--host 127.0.0.1] [--port 8000] [--workers N]   the HTTP API and the web page at /; a
                                                     checkpoint with a CTC head is served
                                                     with it (--decoder joint: the other)

CKPT and DIR are model references: a path, https://.../model.zip#sha256=<hex>,
wandb:<entity>/<project>/<artifact>:<alias> or hf:<user>/<repo>[@revision], fetched once into
$TEXT_RECOGNIZER_CACHE (default ~/.cache/text-recognizer) and used from there afterwards.

Images: grayscale (colour is converted), dark ink on light paper, any size; each is resized and
padded as the model's datamodule does in validation. A bad input is reported as one line,
`error: <file>: <problem>`, the other images are still read, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from text_recognizer.data.image_files import folder_images
from text_recognizer.data.lm_corpus import ORDER, SYNTHETIC_LINES
from text_recognizer.decode import DECODERS, BeamOptions, search_name
from text_recognizer.errors import REPORTED, ImageError, InferenceError
from text_recognizer.inference.models import checkpoint_file, load_recognizer, use_default_lm
from text_recognizer.inference.pages import PageImageReading
from text_recognizer.inference.quantize import QUANTIZATIONS
from text_recognizer.inference.recognizer import Recognizer, TextRecognizer
from text_recognizer.lm import LM_WEIGHT
from text_recognizer.serve.settings import Settings

NO_LM = "none"


def _report(error: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(error)
    print(f"error: {error}", file=sys.stderr, flush=True)


def _recognizer(args: argparse.Namespace, reference: str | Path) -> Recognizer:
    """The model with the options `predict` and `evaluate` share; without `--lm`, the default
    language model where it is built (`use_default_lm`), said on stderr."""
    width = 1 if args.beam is None else args.beam
    beam = BeamOptions(width, lm_weight=args.lm_weight)  # refused before anything loads
    recognizer = load_recognizer(
        reference,
        args.device,
        getattr(args, "max_length", None),
        args.batch_size,
        beam,
        None if args.lm in (None, NO_LM) else args.lm,
        args.quantize,
        args.decoder,
    )
    if args.lm is None and (default := use_default_lm(recognizer, args.beam)):
        search = search_name(recognizer.beam)
        message = f"reading with {search}: the default LM {default} (--beam 1: greedy)"
        print(message, file=sys.stderr)
    return recognizer


def _expand(images: list[str], debug: bool) -> tuple[list[Path], bool]:
    """Paths in order, each folder replaced by its image files; True if a folder had none."""
    paths: list[Path] = []
    failed = False
    for given in map(Path, images):
        if not given.is_dir():
            paths.append(given)
        elif found := folder_images(given):
            paths += found
        else:
            _report(ImageError(given, "folder holds no image files"), debug)
            failed = True
    return paths, failed


def _predict(args: argparse.Namespace) -> int:
    documents = [Path(p) for p in args.images if Path(p).suffix.lower() == ".xml"]
    if documents and not args.out:
        raise InferenceError("--out", f"give a folder to write the readings of {documents[0]} to")
    pages = args.out is not None or args.segment is not None or args.overlay
    if pages and not args.out:
        raise InferenceError("--out", "give a folder to write the pages' text, XML and overlays to")
    recognizer = _recognizer(args, args.model or args.checkpoint)
    failed = _documents(recognizer, documents, args) if documents else False
    paths, missing = _expand([p for p in args.images if Path(p) not in documents], args.debug)
    failed |= missing
    if pages:
        return 1 if _pages(recognizer, paths, args) or failed else 0
    for path, read in recognizer.predict_files(paths):
        if isinstance(read, ImageError):
            failed = True
            _report(read, args.debug)
            if args.json:
                print(json.dumps({"path": str(path), "error": read.problem}), flush=True)
        elif args.json:
            record = {"path": str(path), "text": read.text, "seconds": round(read.seconds, 6)}
            print(json.dumps(record), flush=True)
        else:  # one line per image: a paragraph's newlines are written as \n
            one_line = read.text.replace("\n", "\\n")
            print(f"{path}\t{one_line}", flush=True)
    return 1 if failed else 0


def _documents(recognizer: Recognizer, documents: list[Path], args: argparse.Namespace) -> bool:
    """Write each document with its readings into --out; True if any could not be."""
    from text_recognizer.inference.documents import read_page

    failed, written = False, dict[str, Path]()
    for path in documents:
        try:
            if path.name in written:
                raise InferenceError(path, f"has the name of {written[path.name]}: rename one")
            page = read_page(recognizer, path, Path(args.out), args.batch_size)
        except REPORTED as error:
            failed = True
            _report(error, args.debug)
            if args.json:
                print(json.dumps({"path": str(path), "error": str(error)}), flush=True)
            continue
        written[path.name] = path
        cer = "" if page.cer is None else f", cer {page.cer:.4f} against its text"
        skipped = f", {page.skipped} skipped" if page.skipped else ""
        if args.json:
            record = {"path": str(path), "out": str(page.out), "lines": page.lines}
            print(json.dumps({**record, "skipped": page.skipped, "cer": page.cer}), flush=True)
        else:
            print(f"{path}\t-> {page.out} ({page.lines} lines{skipped}{cer})", flush=True)
    return failed


def _pages(recognizer: Recognizer, paths: list[Path], args: argparse.Namespace) -> bool:
    """Find, read and write each page image into --out; True if any could not be."""
    from tqdm import tqdm

    from text_recognizer.inference.pages import read_page_images

    failed = False
    read = read_page_images(
        recognizer, paths, Path(args.out), args.format, args.segment, args.overlay, args.batch_size
    )
    progress = tqdm(read, total=len(paths), unit="page", disable=len(paths) < 2, file=sys.stderr)
    for path, page in progress:
        if not isinstance(page, PageImageReading):
            failed = True
            progress.write(f"error: {page}", file=sys.stderr)
            if args.json:
                print(json.dumps({"path": str(path), "error": str(page)}), flush=True)
            continue
        written = [str(p) for p in page.written]
        if args.json:
            record = {"path": str(path), "written": written, "lines": page.lines}
            print(json.dumps({**record, "regions": page.regions, "seconds": page.seconds}))
        else:
            summary = f"{page.lines} lines in {page.regions} regions, {page.seconds:.1f} s"
            progress.write(f"{path}\t-> {', '.join(written)} ({summary})", file=sys.stdout)
    return failed


def _evaluate(args: argparse.Namespace) -> int:
    from text_recognizer.inference.evaluate import datamodule_named, evaluate, report_folder

    checkpoint = checkpoint_file(args.checkpoint, "evaluate")
    recognizer = _recognizer(args, checkpoint)
    assert isinstance(recognizer, TextRecognizer)  # what a checkpoint loads as
    datamodule = (
        datamodule_named(args.datamodule)
        if args.datamodule
        else recognizer.spec.build_datamodule(checkpoint)
    )
    name = type(datamodule).__name__
    out = Path(args.out) if args.out else report_folder(args.checkpoint, checkpoint, name)
    report = evaluate(recognizer, datamodule, out, args.worst, source=str(checkpoint))
    print(f"{name} test: {report['samples']} samples in {report['seconds']:.1f} s")
    print(f"cer {report['cer']:.4f}  wer {report['wer']:.4f}")
    if report["per_family"]:
        print("per family (worst first):")
    for family, row in report["per_family"].items():
        print(f"  {family:28s} cer {row['cer']:.4f}  wer {row['wer']:.4f}  ({row['samples']})")
    if report["worst"]:
        print(f"worst {len(report['worst'])}:")
    for row in report["worst"]:
        print(f"  cer {row['cer']:.3f}  target {row['target']!r}  predicted {row['prediction']!r}")
    grid = " and predictions.png" if report["worst"] else ""
    print(f"report: {out / 'report.json'}{grid}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from text_recognizer.inference.models.publish import export_model

    checkpoint = checkpoint_file(args.checkpoint, "export")
    files, card = export_model(
        checkpoint, args.format, Path(args.out), args.quantize, args.decoder, args.license
    )
    *rest, last = map(str, files)
    print(f"wrote {', '.join(rest)} and {last}" if rest else f"wrote {last}")
    print(f"wrote {card}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from text_recognizer.inference.models.publish import push

    print(f"pushed {args.model} to {push(Path(args.model), args.to)}")
    return 0


def _lm_train(args: argparse.Namespace) -> int:
    from text_recognizer.data.lm_corpus import default_lm, synthetic_corpus
    from text_recognizer.lm import read_corpus, train, write_arpa

    if args.order < 1:
        raise InferenceError("--order", f"must be at least 1, got {args.order}")
    if args.corpus and not args.out:
        raise InferenceError("--out", f"give the file to write the model of {args.corpus} to")
    out = Path(args.out) if args.out else default_lm()
    if args.if_missing and out.is_file():
        print(f"{out}: present, skipped")
        return 0
    if args.corpus:
        lines, source = read_corpus(Path(args.corpus)), str(Path(args.corpus))
    else:
        lines, source = synthetic_corpus(args.synthetic_lines), "the synthetic text source"
    if not lines:
        raise InferenceError(source, "holds no text to count")
    model = train(lines, args.order)
    write_arpa(model, out)
    print(
        f"wrote {out}: order {args.order}, {len(model.probs)} n-grams from {len(lines)} "
        f"lines of {source}"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from text_recognizer.serve.server import serve
    from text_recognizer.serve.settings import TOKEN_ENV

    for flag in ("workers", "threads"):
        if (value := getattr(args, flag)) is not None and value <= 0:
            raise InferenceError(f"--{flag}", f"must be positive, got {value}")
    settings = Settings(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        max_upload_bytes=round(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        timeout_s=args.timeout,
        token=args.token or os.environ.get(TOKEN_ENV) or None,
        cors_origins=tuple(args.cors_origin),
    )
    serve(
        settings,
        args.model or args.checkpoint,
        args.device,
        args.host,
        args.port,
        args.workers,
        args.threads,
        args.decoder,
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="text-recognizer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", parents=[common], help="print the text of images")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a checkpoint written by training")
    source.add_argument("--model", help="an exported folder, or any model reference")
    predict.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files or folders, PAGE or ALTO files"
    )
    predict.add_argument(
        "--out", help="folder for the readings of XML files and page images (see above)"
    )
    predict.add_argument(
        "--segment",
        choices=("lines", "regions"),
        help="page images: read found lines, or regions whole with a paragraph checkpoint "
        "(default: regions for a paragraph checkpoint, else lines)",
    )
    predict.add_argument(
        "--format", choices=("page", "alto"), default="page", help="page images: the XML written"
    )
    predict.add_argument(
        "--overlay", action="store_true", help="page images: also draw the readings on the page"
    )
    predict.add_argument("--json", action="store_true", help="one JSON object per image")
    predict.add_argument("--max-length", type=int, help="decode at most this many tokens")
    predict.set_defaults(run=_predict)

    evaluate = commands.add_parser("evaluate", parents=[common], help="CER/WER on a test split")
    evaluate.add_argument("--checkpoint", required=True, help="a checkpoint or its reference")
    evaluate.add_argument("--datamodule", help="config or class name (default: the model's)")
    evaluate.add_argument("--out", help="report folder (default: beside the checkpoint)")
    evaluate.add_argument("--worst", type=int, default=10, help="samples in the worst list")
    evaluate.set_defaults(run=_evaluate)
    for command in (predict, evaluate):
        command.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto")
        command.add_argument(
            "--batch-size", type=int, help="images a batch (default: 32 lines or 4 pages)"
        )
        command.add_argument(
            "--beam",
            type=int,
            help="beam width (1: greedy; default: 5 with the default LM for a line model's "
            "attention decoder where `make generate` built the LM, else 1)",
        )
        command.add_argument(
            "--lm",
            help="a character language model (`lm train`) to fuse into a beam (default: the "
            f"default LM where it is built; {NO_LM}: none)",
        )
        command.add_argument(
            "--lm-weight", type=float, default=LM_WEIGHT, help="its share of each beam score"
        )
        command.add_argument("--quantize", choices=QUANTIZATIONS, help="int8 linear layers")

    export = commands.add_parser("export", parents=[common], help="export to ONNX/TorchScript")
    export.add_argument("--checkpoint", required=True, help="a checkpoint or its reference")
    export.add_argument("--format", required=True, choices=("onnx", "torchscript", "checkpoint"))
    export.add_argument("--out", required=True, help="folder for the files and model.json")
    export.add_argument("--quantize", choices=QUANTIZATIONS, help="int8 weights")
    export.add_argument("--license", default="mit", help="the model card's licence (mit)")
    export.set_defaults(run=_export)

    push = commands.add_parser("push", parents=[common], help="upload an exported folder")
    push.add_argument("--model", required=True, help="a folder written by `export`")
    push.add_argument("--to", required=True, help="hf:<user>/<repo> or wandb:[<entity>/]<project>")
    push.set_defaults(run=_push)

    lm = commands.add_parser("lm", help="character language models for beam search")
    lm_commands = lm.add_subparsers(dest="lm_command", required=True)
    lm_train = lm_commands.add_parser(
        "train", parents=[common], help="count a character n-gram model into an ARPA file"
    )
    lm_train.add_argument("corpus", nargs="?", help="UTF-8 text, one sentence a line")
    lm_train.add_argument("--order", type=int, default=ORDER, help="characters of context + 1")
    lm_train.add_argument(
        "--out", help="the ARPA file to write (without a corpus, default: the default LM's file)"
    )
    lm_train.add_argument(
        "--if-missing", action="store_true", help="skip it if the file is already there"
    )
    lm_train.add_argument(
        "--synthetic-lines",
        type=int,
        default=SYNTHETIC_LINES,
        help="without a corpus: lines drawn from the synthetic text source",
    )
    lm_train.set_defaults(run=_lm_train)

    serve = commands.add_parser("serve", parents=[common], help="the HTTP API and web page")
    model = serve.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="a checkpoint written by training")
    model.add_argument("--model", help="a folder written by `text-recognizer export`")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="processes, each with the model")
    serve.add_argument(
        "--threads", type=int, help="torch threads per process (default: (cores - 1) / workers)"
    )
    serve.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto")
    serve.add_argument(
        "--token", help="require `Authorization: Bearer TOKEN` on /v1/* (or $TEXT_RECOGNIZER_TOKEN)"
    )
    serve.add_argument(
        "--cors-origin", action="append", default=[], help="allow this origin (repeatable)"
    )
    defaults = Settings()
    serve.add_argument("--max-batch", type=int, default=defaults.max_batch, help="1: no batching")
    serve.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms)
    serve.add_argument("--max-queue", type=int, default=defaults.max_queue)
    serve.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_bytes / 2**20)
    serve.add_argument("--max-pixels", type=int, default=defaults.max_pixels)
    serve.add_argument("--timeout", type=float, default=defaults.timeout_s, help="seconds")
    serve.set_defaults(run=_serve)

    for command, default in (
        (predict, "joint"),
        (evaluate, "joint"),
        (export, "joint"),
        (serve, "ctc where the checkpoint has a CTC head, else joint"),
    ):
        command.add_argument(
            "--decoder",
            choices=DECODERS,
            help=f"joint: the attention decoder; ctc: the CTC head alone (default: {default}; "
            "an export reads with the decoder it was made for)",
        )

    args = parser.parse_args(argv)
    try:
        code = args.run(args)
    except REPORTED as error:
        _report(error, args.debug)
        code = 1
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
