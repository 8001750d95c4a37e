"""Command line: ``python3 -m flask_rock {expand,check} DIR``.

Each subcommand is registered by an ``add_*_parser(subparsers)`` function listed in
``SUBCOMMANDS``; the parser it adds sets ``handler``, a function taking the parsed arguments
and returning the exit code. Adding a subcommand (such as ``run``) means appending its adder.
"""

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from . import local_run
from .bases import EXPERIMENTAL_SWITCH, EXTENSION, select_extension
from .errors import ProjectError
from .expand import CONFIG_FILES_DIR, expand_project

DEFAULT_FILE = "rockcraft.yaml"


class _BlockStyleDumper(yaml.SafeDumper):
    """Safe dumper writing multi-line strings (override-build scripts) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockStyleDumper.add_representer(str, _represent_str)


def to_yaml(document: dict[str, Any]) -> str:
    """Return the document as YAML, keys in their given order."""
    # A wide line keeps long commands on one line, as people read and write them.
    return yaml.dump(document, Dumper=_BlockStyleDumper, sort_keys=False, width=1_000_000)


def report_problems(where: Path, problems: list[str]) -> None:
    """Print a header naming the file, then one ``- problem`` line each, to stderr."""
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    print(f"{where}: {count} to fix for the flask-framework extension:", file=sys.stderr)
    for problem in problems:
        print(f"- {problem}", file=sys.stderr)


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as err:
        raise ProjectError([f"cannot write {output} ({err}): choose a writable -o/--output path"])


def vendor_config_files(project_dir: Path, dirname: str) -> str:
    """Copy the shipped config files into the project, so `rockcraft pack` needs nothing else."""
    target = project_dir / dirname
    try:
        target.mkdir(parents=True, exist_ok=True)
        for item in sorted(CONFIG_FILES_DIR.iterdir()):
            shutil.copyfile(item, target / item.name)
    except OSError as err:
        raise ProjectError([f"cannot write the config files to {target} ({err})"]) from None
    return dirname


def _note_experimental(document: dict[str, Any]) -> None:
    """Say so, as Rockcraft does, when the project uses the experimental extension."""
    if select_extension(document).experimental:
        print(
            f"*EXPERIMENTAL* extension {EXTENSION!r} enabled ({EXPERIMENTAL_SWITCH} is set)",
            file=sys.stderr,
        )


def run_expand(args: argparse.Namespace) -> int:
    """Print (or write) the expanded YAML; exit 1 listing the problems if there are any."""
    project_dir = Path(args.dir)
    try:
        config_source = args.config_source
        if args.vendor_config:
            config_source = vendor_config_files(project_dir, args.vendor_config)
        document = expand_project(project_dir, args.file, config_source)
        _note_experimental(document)
        _write(to_yaml(document), args.output)
    except ProjectError as err:
        report_problems(project_dir / args.file, err.problems)
        return 1
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Exit 0 when the project expands cleanly, else 1 listing every problem."""
    where = Path(args.dir) / args.file
    try:
        _note_experimental(expand_project(Path(args.dir), args.file))
    except ProjectError as err:
        report_problems(where, err.problems)
        return 1
    print(f"{where}: OK, ready for the flask-framework extension")
    return 0


def _add_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the project directory")
    parser.add_argument(
        "--file",
        default=DEFAULT_FILE,
        metavar="NAME",
        help=f"read DIR/NAME instead of DIR/{DEFAULT_FILE}",
    )


def add_expand_parser(subparsers: Any) -> None:
    """Register ``expand DIR [--file NAME] [--config-source PATH] [-o FILE]``."""
    parser = subparsers.add_parser("expand", help="print the expanded rockcraft.yaml")
    _add_file_option(parser)
    parser.add_argument(
        "--config-source",
        metavar="PATH",
        help="source of the flask-framework/config-files part (default: the bundled files)",
    )
    parser.add_argument(
        "--vendor-config",
        metavar="DIRNAME",
        help="copy the config files into DIR/DIRNAME and use that as their source",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    parser.set_defaults(handler=run_expand)


def add_check_parser(subparsers: Any) -> None:
    """Register ``check DIR [--file NAME]``."""
    parser = subparsers.add_parser("check", help="validate a flask-framework project")
    _add_file_option(parser)
    parser.set_defaults(handler=run_check)


SUBCOMMANDS: list[Callable[[Any], None]] = [
    add_expand_parser,
    add_check_parser,
    local_run.add_run_parser,
]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="python3 -m flask_rock",
        description="Validate and expand rockcraft.yaml projects using flask-framework.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
