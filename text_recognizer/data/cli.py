"""`text-recognizer-data`: build, inspect and (later) download the datasets.

text-recognizer-data generate          render the synthetic lines (skips what is complete)
text-recognizer-data info [--grid P]   sizes, shapes, charset coverage; a PNG of samples
text-recognizer-data download          fetch the real datasets
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from text_recognizer.data.synthetic_lines import SyntheticLines


def _generate(args: argparse.Namespace) -> None:
    datamodule = SyntheticLines()
    started = time.perf_counter()
    datamodule.prepare_data()
    print(f"synthetic_lines: {datamodule.path} ready ({time.perf_counter() - started:.1f} s)")


def _info(args: argparse.Namespace) -> None:
    datamodule = SyntheticLines()
    datamodule.setup()
    print(datamodule.describe())
    if args.grid:
        print(f"sample grid: {datamodule.save_grid(Path(args.grid), split=args.split)}")


def _download(args: argparse.Namespace) -> None:
    print(
        "no real dataset is wired in yet (EMNIST and IAM arrive with the real-data issue); "
        "the default synthetic data needs no download: run `make generate`"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="text-recognizer-data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("generate", help="render the synthetic datasets").set_defaults(
        run=_generate
    )
    info = commands.add_parser("info", help="print dataset info and save a sample grid")
    info.add_argument("--grid", help="save a PNG grid of samples here")
    info.add_argument("--split", default="train", choices=("train", "val", "test"))
    info.set_defaults(run=_info)
    commands.add_parser("download", help="download the real datasets").set_defaults(run=_download)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
