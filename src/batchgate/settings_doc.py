"""The settings table of docs/configuration.md, generated from `Settings` and the CLI's options.

`python -m batchgate.settings_doc [docs/configuration.md]` rewrites the table between the two marker comments;
`--check` exits 1 when the committed table differs. Each setting's description is the one source of its text,
and the flag column comes from walking `batchgate.cli.main`'s commands, so neither can drift from the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
from pydantic.fields import FieldInfo

from batchgate.settings import Settings

BEGIN = "<!-- settings table: generated from settings.py by `python -m batchgate.settings_doc` -->"
END = "<!-- end of settings table -->"
DEFAULT_PAGE = Path("docs/configuration.md")
HEADER = "| environment variable | flag | default | meaning |\n|---|---|---|---|"


def setting_flags(main: click.Group) -> dict[str, list[tuple[str, list[str]]]]:
    """Setting name -> [(flag, top-level commands that take it)], flags in the order the commands declare them.

    Commands with a `--base-url` are clients of a running server: an option there that shares a setting's name
    (`batches submit --poll-interval`) is the client's own, not the setting."""
    found: dict[str, dict[str, list[str]]] = {}

    def walk(command: click.Command, top: str) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, top or name)
            return
        options = [p for p in command.params if isinstance(p, click.Option)]
        if any(o.name == "base_url" for o in options):
            return
        for option in options:
            if option.name in Settings.model_fields:
                flag = "/".join([max(option.opts, key=len), *option.secondary_opts])
                commands = found.setdefault(option.name, {}).setdefault(flag, [])
                if top not in commands:
                    commands.append(top)

    walk(main, "")
    return {name: list(flags.items()) for name, flags in found.items()}


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    return "`none`" if value is None else f"`{value}`"


def _cell(text: str) -> str:
    """Table-safe text; `docs/<page>.md` becomes a link relative to this page."""
    text = " ".join(text.split()).replace("|", "\\|")
    return re.sub(r"docs/([\w-]+\.md)", r"[\1](\1)", text)


def table() -> str:
    from batchgate.cli import main as cli  # the CLI imports most of the package: only the generator needs it

    flags = setting_flags(cli)
    rows = [HEADER]
    for name, field in Settings.model_fields.items():
        flag = ", ".join(f"`{f}` ({', '.join(f'`{c}`' for c in commands)})" for f, commands in flags.get(name, []))
        rows.append(f"| `BATCHGATE_{name.upper()}` | {flag} | {_default(field)} | {_cell(field.description or '')} |")
    return "\n".join(rows)


def render(page: str) -> str:
    """The page with its generated table replaced by the current one."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the page has no `{BEGIN}` ... `{END}` block")
    return page[: start + len(BEGIN)] + "\n" + table() + "\n" + page[end:]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    path = Path(paths[0]) if paths else DEFAULT_PAGE
    page = path.read_text("utf-8")
    new = render(page)
    if check:
        if new != page:
            print(f"{path}: the settings table is out of date; run python -m batchgate.settings_doc", file=sys.stderr)
            return 1
        return 0
    if new != page:
        path.write_text(new, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
