"""The `mcrm` entry point: global options, sub-command groups and the exit-code mapping.

`McrmGroup.main` runs click in non-standalone mode and maps every outcome to one `ExitCode`:
a command's returned code, `McrmError` subclasses (one plain line on stderr plus an optional
`hint:` line), click usage errors (2), Ctrl-C (130), and anything else as a bug (1, with
`hint: rerun with --debug`). Tracebacks only with `--debug` / `MCRM_DEBUG=1`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer._coercion import RuntimeParam
from typer.core import TyperGroup

from mcrm.cli.options import state
from mcrm.errors import ExitCode, McrmError, exit_code_for


def _debug(args: Sequence[str] | None) -> bool:
    argv = list(args) if args is not None else sys.argv[1:]
    return "--debug" in argv or os.environ.get("MCRM_DEBUG", "") not in ("", "0", "false")


def error_line(message: str, hint: str | None = None) -> None:
    sys.stderr.write(f"mcrm: error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")
    sys.stderr.flush()


class _Plain(RuntimeParam):
    """Coerces a root option whose pydantic adapter would be the identity.

    typer 0.29 coerces every option through a pydantic `TypeAdapter`, built the first time the
    option is processed. The root group's options are processed on every call, `--help`
    included (its own `--help` flag arrives as None when not given), and importing pydantic
    costs ~0.2 s of the 0.3 s start-up budget (SPEC §2). So `--workspace` (a plain string) and
    the root `--help` get this coercion instead. `tests/cli/test_import_hygiene.py` fails if a
    typer upgrade brings pydantic back onto the `--help` path.
    """

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        if self.annotation is bool:
            return bool(value)
        return value if isinstance(value, str) else str(value)


def _plain_coercion(param: Any) -> Any:
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and getattr(param, "_runtime_param", True) is None:
        if desc.annotation in (str, str | None) or (
            desc.annotation is bool and param.name == "help"
        ):
            param._runtime_param = _Plain(
                parameter_info=desc.parameter_info, annotation=desc.annotation
            )
    return param


class McrmGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return [_plain_coercion(p) for p in super().get_params(ctx)]

    def invoke(self, ctx: Any) -> Any:
        # typer's own main() turns Ctrl-C into a silent Exit(130) and a broken pipe into
        # sys.exit(1) before `main` below can see them, so they are handled here.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            error_line("interrupted")
            raise
        except BrokenPipeError:
            # stdout closed early (| head): not an error for a data command. Point the stdout
            # descriptor at /dev/null so the final flush at exit does not fail again.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            return 0

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        debug = _debug(args)
        try:
            rv = super().main(
                args=args,
                prog_name=prog_name or "mcrm",
                complete_var=complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = int(rv) if isinstance(rv, int) else 0
        except McrmError as e:
            if debug:
                import traceback

                traceback.print_exc()
            error_line(e.render(), e.hint)
            code = int(e.exit_code)
        except KeyboardInterrupt:
            error_line("interrupted")
            code = int(ExitCode.INTERRUPTED)
        except BrokenPipeError:
            # stdout closed early (| head): not an error for a data command
            try:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115
            except OSError:
                pass
            code = 0
        except Exception as e:
            if hasattr(e, "exit_code") and hasattr(e, "format_message"):
                if getattr(e, "ctx", None) is not None and type(e).__name__ == "NoArgsIsHelpError":
                    sys.stderr.write(e.format_message() + "\n")
                    code = int(ExitCode.USAGE)
                else:
                    hint = None
                    ctx = getattr(e, "ctx", None)
                    if ctx is not None:
                        hint = f"see '{ctx.command_path} --help'"
                    error_line(e.format_message(), hint)
                    code = int(getattr(e, "exit_code", 2) or 2)
            else:
                if debug:
                    import traceback

                    traceback.print_exc()
                error_line(f"unexpected {type(e).__name__}: {e}", "rerun with --debug")
                code = int(exit_code_for(e))
        if standalone_mode:
            sys.exit(code)
        return code


EXIT_CODES_HELP = (
    "Exit codes: 0 ok · 1 ran but found problems (rejects over the limit, failed validation, "
    "partial send) · 2 usage or config error · 3 data / IO error (missing file, database "
    "locked, schema mismatch) · 4 provider error that stopped a send · 130 interrupted."
)

app = typer.Typer(
    cls=McrmGroup,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help="mcrm — a mobile CRM in a terminal and a git repo: import app and e-shop exports, "
    "know every customer, segment them, and message them safely.\n\n" + EXIT_CODES_HELP,
)


def _version(value: bool) -> None:
    if value:
        from mcrm import __version__

        sys.stdout.write(f"mcrm {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace",
            "-w",
            envvar="MCRM_WORKSPACE",
            help="Workspace folder (default: the first folder up from here with mcrm.yaml "
            "or segments.yaml).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", envvar="MCRM_DEBUG", help="Show tracebacks on errors.")
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", envvar="MCRM_QUIET", help="No progress or summaries."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    s = state(ctx)
    s.workspace, s.debug, s.quiet = workspace, debug, quiet


def _register() -> None:
    from mcrm.cli import (
        campaigns_cmd,
        config_cmd,
        db_cmd,
        demo_cmd,
        import_cmd,
        predict_cmd,
        providers_cmd,
        report_cmd,
        segments_cmd,
        send_cmd,
        users_cmd,
    )

    app.command("demo")(demo_cmd.demo)
    app.add_typer(import_cmd.app, name="import")
    app.add_typer(users_cmd.app, name="users")
    app.add_typer(segments_cmd.app, name="segments")
    app.command("rfm")(segments_cmd.rfm)
    app.command("lifecycle")(segments_cmd.lifecycle)
    app.add_typer(campaigns_cmd.app, name="campaigns")
    app.add_typer(db_cmd.app, name="db")
    app.command("sql")(db_cmd.sql)
    app.add_typer(config_cmd.app, name="config")
    app.command("send")(send_cmd.send)
    app.command("run")(send_cmd.run)
    app.add_typer(send_cmd.outbox_app, name="outbox")
    app.add_typer(providers_cmd.app, name="providers")
    app.add_typer(predict_cmd.app, name="predict")
    app.add_typer(report_cmd.app, name="report")


_register()


def main() -> None:
    app()
