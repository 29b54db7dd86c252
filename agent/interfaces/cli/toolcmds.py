"""Tool commands of ``lastmile``: tool and tools (an analytics tool without the agent)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from pydantic import ValidationError
from rich import box
from rich.table import Table

from agent.errors import validation_problems
from agent.interfaces.cli.common import DbOption, _backend, out
from agent.interfaces.cli.errors import user_errors


@user_errors
def tool_cmd(
    name: Annotated[str, typer.Argument(help="Tool name (see `lastmile tools`).")],
    args: Annotated[
        str, typer.Argument(help='Arguments as JSON, e.g. \'{"day": "2026-03-09"}\'.')
    ] = "{}",
    db: DbOption = None,
) -> None:
    """Run one analytics tool without the agent and print its JSON result."""
    import tools

    if name not in tools.TOOLS:
        raise ValueError(f"unknown tool {name!r}; tools: {', '.join(tools.TOOLS)}")
    try:
        payload = json.loads(args)
    except json.JSONDecodeError as exc:
        raise ValueError(f"arguments are not valid JSON: {exc}") from None
    ctx = tools.ToolContext(backend=_backend(db))
    try:
        result = tools.TOOLS[name](ctx, payload)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc))
        raise ValueError(f"invalid arguments for {name}: {problems}") from None
    except tools.ToolError as exc:
        raise ValueError(f"{name}: {exc}") from None
    out.print_json(result.model_dump_json())


def tools_cmd() -> None:
    """List the analytics tools and their arguments."""
    import tools

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("tool")
    table.add_column("what it does")
    table.add_column("arguments")
    for name, spec in tools.TOOLS.items():
        table.add_row(name, spec.description, ", ".join(spec.input_model.model_fields))
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add ``tool`` and ``tools`` to ``app``."""
    app.command("tool")(tool_cmd)
    app.command("tools")(tools_cmd)
