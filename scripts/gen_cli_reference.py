"""Write docs/cli.md from the argparse parser (the CLI reference of the docs site).

python scripts/gen_cli_reference.py          # rewrite docs/cli.md
python scripts/gen_cli_reference.py --check  # exit 1 when docs/cli.md is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET = REPO / "docs" / "cli.md"


def render() -> str:
    from sr_domains.cli import build_parser

    parser = build_parser()
    parser.prog = "sr-domains"
    out = [
        "# Command-line reference",
        "",
        "Generated from the argument parser by `python scripts/gen_cli_reference.py` (a test "
        "checks it is up to date). Every command also answers `--help`.",
        "",
        "Conventions (as rio's): errors print one line `sr-domains: error: ...` naming the file "
        "(`-v` adds the traceback); `-q` shows errors only; progress bars appear only when "
        "stderr is a terminal (`--progress` forces them, `--no-progress` turns them off), and "
        "batches print a file counter `[i/n]`; written paths go to stdout, one per line (a batch "
        "stopped by Ctrl-C or SIGTERM still prints the ones it completed); an output path "
        "holding a line break (newline, carriage return, vertical tab, form feed, NEL, "
        "U+2028/U+2029) is refused before any work, so each line is one whole path; other "
        "characters, a tab too, are printed as they are (inputs may have any name: "
        "[output_safety.md](output_safety.md#7-names-an-output-can-have)).",
        "",
        "| exit status | meaning |",
        "|---|---|",
        "| 0 | success |",
        "| 1 | runtime error: an unreadable or invalid input, an output that exists or would be "
        "unsafe to replace, a checkpoint that cannot be used, disk full, permissions, memory; "
        "in a batch, some files failed (the others are written) |",
        "| 2 | usage error: unknown option or name, invalid or conflicting options |",
        "| 130, 141, 143 | interrupted (Ctrl-C: `sr-domains: interrupted`), broken pipe, "
        "terminated (SIGTERM: `sr-domains: terminated`); temporary files are removed |",
        "",
        "Called from a Python program, `sr_domains.cli.main([...])` returns these statuses, "
        "except for Ctrl-C and SIGTERM, which stop the program too (a `for f in files: "
        "main([...])` loop does not go on to its next file): after the line, once the "
        "temporary files are removed, Ctrl-C re-raises `KeyboardInterrupt` (what Python code "
        "raises on Ctrl-C; left unhandled, the process ends as Ctrl-C ends it) and SIGTERM "
        "raises `SystemExit(143)`.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
    ]
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        sub.prog = f"sr-domains {name}"
        out += ["", f"## sr-domains {name}", "", "```text", sub.format_help().rstrip(), "```"]
    return "\n".join(out) + "\n"


def main() -> int:
    import os

    os.environ["COLUMNS"] = "100"  # stable wrapping whatever the terminal
    text = render()
    if "--check" in sys.argv[1:]:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python scripts/gen_cli_reference.py")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
