"""The ``vfx`` typer app: its sub-apps, and every command registered under its name.

The commands live by group in :mod:`vfx.cli.shot`, :mod:`vfx.cli.faces`, :mod:`vfx.cli.train`,
:mod:`vfx.cli.render`, :mod:`vfx.cli.review`, :mod:`vfx.cli.farm`, :mod:`vfx.cli.demo` and :mod:`vfx.cli.doctor`;
their shared options in :mod:`vfx.cli.options`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vfx.cli import demo, doctor, faces, farm, render, review, shot, train
from vfx.utils.logging import configure_logging

__all__ = ["app", "edit_app", "faceset_app", "farm_app", "model_app", "shot_app", "task_app"]

app = typer.Typer(
    name="vfx",
    help="Face swap, blending, retouch and farm hand-off for film shots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
shot_app = typer.Typer(help="Check and print shot files (schema vfx.Shot/1).", no_args_is_help=True)
app.add_typer(shot_app, name="shot")
faceset_app = typer.Typer(help="Curate a faceset before training: a report (pose, sharpness, identity, "
                          "near-duplicates) and frames to leave out.", no_args_is_help=True)
app.add_typer(faceset_app, name="faceset")
model_app = typer.Typer(help="Inspect trained comb models (schema vfx.CombModel/1).", no_args_is_help=True)
app.add_typer(model_app, name="model")
edit_app = typer.Typer(help="Segmentation-driven latent edits: learn an edit vector on a keyframe, apply it to a "
                       "shot (schema vfx.EditVector/1).", no_args_is_help=True)
app.add_typer(edit_app, name="edit")
task_app = typer.Typer(help="One farm task of a shot (what every engine and farm manager runs).", no_args_is_help=True)
app.add_typer(task_app, name="task")
farm_app = typer.Typer(help="A shot as farm tasks: run them (local or Ray), show where they stand, export them to "
                       "OpenCue, OpenJD or Deadline.", no_args_is_help=True)
app.add_typer(farm_app, name="farm")


def _print_version(value: bool) -> None:
    if value:
        import vfx

        typer.echo(f"vfx {vfx.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-v info, -vv debug).")] = 0,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log as JSON lines, for farm managers.")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the version of vfx and exit.")] = False,
) -> None:
    configure_logging({0: None, 1: "info"}.get(verbose, "debug"), json_lines=log_json)
    # The plate layer registers the plate clock an editorial cut (plate.edit) is mapped through, so every
    # command loads a shot with a cut the same way (vfx.shot, below vfx.io, cannot import it).
    import vfx.io  # noqa: F401


# The order here is the order `vfx --help` lists them in.
shot_app.command("validate")(shot.shot_validate)
shot_app.command("show")(shot.shot_show)
app.command("probe")(shot.probe)
app.command("demo")(demo.demo)
app.command("extract")(faces.extract)
faceset_app.command("report")(faces.faceset_report)
faceset_app.command("exclude")(faces.faceset_exclude)
app.command("train")(train.train)
app.command("swap")(render.swap)
app.command("retouch")(render.retouch)
edit_app.command("labels")(render.edit_labels)
edit_app.command("learn")(render.edit_learn)
edit_app.command("apply")(render.edit_apply)
app.command("export")(render.export)
app.command("review")(review.review)
task_app.command("run")(farm.task_run)
farm_app.command("run")(farm.farm_run)
farm_app.command("status")(farm.farm_status_command)
farm_app.command("export")(farm.farm_export)
model_app.command("info")(train.model_info)
app.command("doctor")(doctor.doctor)
