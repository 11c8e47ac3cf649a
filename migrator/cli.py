"""The ``migrate`` command line.

Reads like black's: messages go to stderr, diffs and ``-o -`` output to stdout, and the exit code
says what happened (0 fine, 1 ``--check`` found work, 2 usage error, 123 a file could not be
converted). Nothing here imports torch, transformers or ray: ``migrate run`` and ``migrate
validate`` import the runtime only when they are invoked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from migrator import __version__
from migrator.config import project_defaults
from migrator.diffs import colour, result_diff
from migrator.files import discover, write_atomic
from migrator.options import ConvertOptions
from migrator.report import Report
from migrator.results import FileResult
from migrator.vcs import UnstagedGuard


class _Commands(click.Group):
    """The commands, ``run`` and ``validate`` imported only when asked for (or listed by
    ``--help``): they live with the runtime (``migrator.runtime.commands``), which ``convert``, the
    command a pre-commit hook runs on every commit, has no use for."""

    RUNTIME = ("run", "validate")

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.RUNTIME})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.RUNTIME and name not in self.commands:
            try:
                from migrator.runtime import commands
            except ImportError:  # an install without the runtime: the command does not exist
                return None
            self.add_command(getattr(commands, name))
        return super().get_command(ctx, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migrate")
def main() -> None:
    """Move training scripts onto Ray Train's TorchTrainer."""


@main.command("list")
def list_codemods() -> None:
    """Print every codemod with its id and what it migrates."""
    from migrator.registry import index

    for info in index():
        click.echo(f"{info.id:<40} {info.DESCRIPTION}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, allow_dash=True),
              help="With one input file, write the result to this path ('-' for stdout) and leave the input untouched.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff of what would change and write nothing.")
@click.option("--check", is_flag=True, help="Write nothing; exit with 1 if any file would change.")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False), multiple=True,
              help="Write a report of changes and follow-ups: JSON for .json, Markdown for .md, a side-by-side review page for .html, text otherwise; - for text on standard output (repeatable).")
@click.option("--num-workers", type=click.IntRange(min=1), default=None,
              help="Number of Ray Train workers in the generated ScalingConfig. "
                   "Default: the count the script itself asks for where it can be read (Lightning's devices and num_nodes), else 2.")
@click.option("--use-gpu/--no-use-gpu", default=None,
              help="Whether the generated ScalingConfig asks for a GPU per worker. "
                   'Default: yes, unless the script itself trains on CPU (accelerator="cpu", Accelerator(cpu=True)).')
@click.option("--storage-path", metavar="URI",
              help="Persistent storage for multi-node clusters, emitted as RunConfig(storage_path=URI).")
@click.option("--lightning-package", type=click.Choice(["lightning", "pytorch_lightning"]),
              help="Rewrite every Lightning import to this package (default: keep the script's own).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files and folders matching GLOB (repeatable).")
@click.option("--only", multiple=True, metavar="ID", help="Run only this codemod (repeatable; see 'migrate list').")
@click.option("--skip", multiple=True, metavar="ID", help="Do not run this codemod (repeatable).")
@click.option("--color/--no-color", default=None, help="Colour the diff (default: only on a terminal).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and the summary.")
@click.option("--output-format", type=click.Choice(["text", "json", "github", "sarif"]), default="text", show_default=True,
              help="Print the findings (changes, follow-ups, failures) on stdout as JSON, GitHub Actions annotations or SARIF 2.1.0; text prints them on stderr.")
@click.option("--since", metavar="REF", help="Only the files changed since the git REF (committed since the merge base, staged, unstaged or new).")
@click.option("--force", is_flag=True, help="Rewrite files even when git shows unstaged changes in them.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Convert in this many processes (default: the cores available). Output order does not depend on it.")
@click.option("--no-cache", is_flag=True,
              help="Neither use nor store results of earlier runs (kept in $MIGRATE_CACHE_DIR, default ~/.cache/migrate, "
                   "keyed by each file's bytes, the options and this tool's version).")
@project_defaults
def convert(
    paths: tuple[Path, ...],
    output: Path | None,
    show_diff: bool,
    check: bool,
    report_path: tuple[Path, ...],
    num_workers: int | None,
    use_gpu: bool,
    storage_path: str | None,
    lightning_package: str | None,
    exclude: tuple[str, ...],
    only: tuple[str, ...],
    skip: tuple[str, ...],
    color: bool | None,
    quiet: bool,
    output_format: str,
    since: str | None,
    force: bool,
    jobs: int | None,
    no_cache: bool,
) -> None:
    """Rewrite training scripts in PATHS (files, or folders searched for .py files) for Ray Train.

    Changed files are rewritten in place unless --diff, --check or -o is given. A file that cannot
    be converted is left exactly as it was, and the run goes on with the others. Defaults for the
    options come from [tool.migrate] in the nearest pyproject.toml above PATHS; the command line wins.
    """
    from migrator.registry import select

    try:
        codemods = select(only, skip)
    except KeyError as exc:
        raise click.UsageError(f"unknown codemod id: {exc.args[0]} (see 'migrate list')") from None
    if output is not None:
        if len(paths) != 1 or paths[0].is_dir():
            raise click.UsageError("-o/--output takes exactly one input file")
        if show_diff or check:
            raise click.UsageError("-o/--output cannot be combined with --diff or --check")
    if output_format != "text" and (show_diff or str(output) == "-"):
        raise click.UsageError(f"--output-format {output_format} prints on stdout, as --diff and -o - do: choose one")
    options = ConvertOptions(
        num_workers=num_workers, use_gpu=use_gpu, storage_path=storage_path, lightning_package=lightning_package
    )
    colour_diff = sys.stdout.isatty() if color is None else color
    report = Report(check=check, dry_run=show_diff)
    from migrator import parallel

    in_place = output is None and not show_diff and not check
    guard = UnstagedGuard() if in_place and not force else None

    def on_result(result: FileResult) -> None:
        if guard is not None and result.status == "converted" and guard.has_unstaged_changes(Path(result.path)):
            result = FileResult(result.path, "failed", result.source, error="it has unstaged changes in git; "
                                "commit or stage them first, or pass --force to rewrite it anyway")
        result = _emit(result, output=output, show_diff=show_diff, check=check, colour_diff=colour_diff, quiet=quiet,
                       follow_ups=output_format == "text")
        report.add(result)

    files = list(discover(paths, exclude))
    if since is not None:
        from migrator.since import only_changed

        files = list(only_changed(files, since, paths))
    progress = parallel.Progress(len(files)) if parallel.Progress.wanted(quiet) else None
    cache = None if no_cache else parallel.ResultCache()
    if not parallel.convert_paths(files, codemods, options, on_result, jobs=jobs or parallel.available_cores(),
                                  progress=progress, cache=cache):
        click.echo(f"interrupted: {report.summary()} The files not reached are untouched.", err=True)
        sys.exit(parallel.EXIT_INTERRUPTED)
    for path in report_path:
        report.write(path)
    if output_format != "text":
        from migrator.formats import render

        click.echo(render(output_format, report), nl=False)
    click.echo(report.summary(), err=True)
    sys.exit(report.exit_code)


def _emit(result: FileResult, *, output: Path | None, show_diff: bool, check: bool, colour_diff: bool,
          quiet: bool, follow_ups: bool = True) -> FileResult:
    kwargs = dict(output=output, show_diff=show_diff, check=check, colour_diff=colour_diff, quiet=quiet,
                  follow_ups=follow_ups)
    try:
        _emit_or_raise(result, **kwargs)
    except OSError as exc:  # a folder or target we may not write: reported, and the run goes on
        result = FileResult(result.path, "failed", result.source, error=f"cannot write: {exc.strerror or exc}")
        _emit_or_raise(result, **kwargs)
    return result


def _emit_or_raise(result: FileResult, *, output: Path | None, show_diff: bool, check: bool, colour_diff: bool,
                   quiet: bool, follow_ups: bool = True) -> None:
    if result.status == "failed":
        where = f"{result.path}:{result.error_line}" if result.error_line else result.path
        click.echo(f"error: cannot convert {where}: {result.error}", err=True)
        return
    for entry in result.follow_ups:
        if follow_ups and not quiet:
            click.echo(f"follow-up: {entry.where(result.path)}: {entry.message} [{entry.codemod}]", err=True)
    if output is not None:
        data = result.output if result.output is not None else result.source
        if str(output) == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            write_atomic(output, data)
        return
    if result.status != "converted":
        return
    if show_diff:
        diff = result_diff(result)
        click.echo(colour(diff) if colour_diff else diff, nl=False, color=colour_diff)
    if check or show_diff:
        if not quiet:
            click.echo(f"would convert {result.path}", err=True)
        return
    write_atomic(Path(result.path), result.output)
    if not quiet:
        click.echo(f"converted {result.path}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
