"""`text-recognizer-data`: download, build and inspect the datasets.

text-recognizer-data fonts                      fetch the handwriting font pool and the English
                                                sentences (npm); skips what is present and checked
text-recognizer-data download [NAME ...]        fetch and verify EMNIST and IAM (and Brown, with
                                                nltk); skips archives already present and valid
text-recognizer-data generate [NAME ...]        build the processed datasets, skipping what is
                                                done, and real ones whose archives are absent;
                                                each with the values of its training config
                                                (text_recognizer/conf/datamodule/NAME.yaml)
text-recognizer-data info [NAME] [--grid PNG]   sizes, shapes, charset coverage; a PNG of samples

Your own documents are the datamodule `documents`, named with its sources as main.py takes them:
text-recognizer-data info documents datamodule.sources=[pages/] --grid runs/documents.png

Every command can be run again: it only does what is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from text_recognizer.data import registry
from text_recognizer.data.base import BaseDataModule
from text_recognizer.data.download import MissingArchiveError, download, load_metadata
from text_recognizer.data.emnist.lines import download_brown
from text_recognizer.data.synthetic import corpus, pool
from text_recognizer.errors import REPORTED, ConfigError

ARCHIVES = ("emnist", "iam")


def _datamodule(name: str, overrides: list[str]) -> BaseDataModule:
    """`name` built from its training config (see `registry`) with `overrides`."""
    factory = registry.configured(name, overrides) if overrides else registry.DATASETS[name]
    try:
        return factory()
    except ValueError as error:  # the constructors check their values
        raise ConfigError(f"datamodule {name}: {error}") from None


def _generate(args: argparse.Namespace) -> None:
    names = [n for n in args.names if "=" not in n]
    overrides = [n for n in args.names if "=" in n]
    for name in names or [n for n in registry.DATASETS if n not in registry.OWN]:
        datamodule = _datamodule(name, overrides)
        paths = datamodule.paths
        if all(path.exists() for path in paths):
            print(f"{name}: present, skipped ({', '.join(map(str, paths))})")
            continue
        started = time.perf_counter()
        try:
            datamodule.prepare_data()
        except MissingArchiveError as error:
            print(f"{name}: skipped, {error}")
            continue
        seconds = time.perf_counter() - started
        print(f"{name}: built {', '.join(map(str, paths))} ({seconds:.1f} s)")


def _info(args: argparse.Namespace) -> None:
    datamodule = _datamodule(args.name, args.overrides)
    datamodule.setup("fit")
    print(datamodule.describe())
    if args.grid and not len(datamodule.splits()[args.split]):
        print(f"sample grid: the {args.split} split has no samples (--split names another)")
    elif args.grid:
        print(f"sample grid: {datamodule.save_grid(Path(args.grid), split=args.split)}")


def _fonts(args: argparse.Namespace) -> None:
    pool.fetch()
    print(f"fonts: {pool.describe()}")
    corpus.fetch()


def _download(args: argparse.Namespace) -> None:
    for name in args.names or [*ARCHIVES, "brown"]:
        if name == "brown":
            print(download_brown())
            continue
        meta = load_metadata(name)
        archive = meta.archive()
        if download(meta):
            print(f"{name}: downloaded {archive} (sha256 verified)")
        else:
            print(f"{name}: {archive} present and verified, skipped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="text-recognizer-data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="build the processed datasets")
    names = list(registry.CLASSES)
    generate.add_argument(
        "names", nargs="*", metavar="NAME", help=", ".join(names) + "; then KEY=VALUE overrides"
    )
    generate.set_defaults(run=_generate, known=names)
    info = commands.add_parser("info", help="print dataset info and save a sample grid")
    info.add_argument("name", nargs="?", default="synthetic_lines", choices=names)
    info.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="datamodule.<key>=...")
    info.add_argument("--grid", help="save a PNG grid of samples here")
    info.add_argument("--split", default="train", choices=("train", "val", "test"))
    info.set_defaults(run=_info, known=())
    fonts = commands.add_parser("fonts", help="fetch the font pool and the sentences with npm")
    fonts.set_defaults(run=_fonts, known=())
    fetch = commands.add_parser("download", help="download and verify the real datasets")
    fetch.add_argument("names", nargs="*", metavar="NAME", help=", ".join([*ARCHIVES, "brown"]))
    fetch.set_defaults(run=_download, known=[*ARCHIVES, "brown"])
    args = parser.parse_args(argv)
    unknown = [n for n in getattr(args, "names", ()) if n not in args.known and "=" not in n]
    if unknown:
        parser.error(f"unknown dataset {', '.join(unknown)}; choose from {', '.join(args.known)}")
    try:
        args.run(args)
    except REPORTED as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
