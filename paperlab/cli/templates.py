"""Templates and methods, shipped and the user's own: list them with where each comes from, show one resolved,
start a new one from the closest existing one (`templates new`, `methods new`), check a method in seconds."""

from __future__ import annotations

import typer

from paperlab.cli.output import print_json, table

templates_app = typer.Typer(help="Experiment templates.", invoke_without_command=True, no_args_is_help=False)


PAIR_HELP = "TEACHER/STUDENT: the template's nets, settings and claims for that pair (see `paperlab templates`)."


@templates_app.callback()
def templates_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the experiment templates and the papers they reproduce."""
    if ctx.invoked_subcommand:
        return
    import sys

    from paperlab.errors import BadInput
    from paperlab.lab.templates import pairs, raw, template_files

    rows, origin = [], {}
    for name, (_, where) in template_files().items():
        try:
            rows.append(raw(name))
            origin[name] = where
        except BadInput as exc:  # one broken template (yours, most likely) does not hide the others
            print(f"warning: {exc}", file=sys.stderr)
    if as_json:
        return print_json([{"name": r["name"], "paper": str(r.get("paper") or ""), "reference": r.get("reference", ""),
                            "title": r["title"], "method": r["method"], "from": origin.get(r["name"], ""),
                            "dataset": r["dataset"], "pairs": pairs(r), "profiles": list(r.get("profiles", {}))}
                           for r in rows])
    table(["template", "from", "paper", "method", "dataset", "pairs (--pair)", "profiles", "title"],
          [[r["name"], origin.get(r["name"], ""), r.get("paper") or "(not on arXiv)", r["method"], r["dataset"],
            ", ".join(pairs(r)), ", ".join(r.get("profiles", {})), r["title"]] for r in rows])


@templates_app.command("show")
def templates_show(name: str, profile: str = typer.Option("paper", "--profile", "-p"),
                   pair: str = typer.Option(None, "--pair", help=PAIR_HELP),
                   set_: list[str] = typer.Option([], "--set", help="key=value override (repeatable).")) -> None:
    """Print a template resolved for a profile (and a pair), overrides applied."""
    from paperlab.lab.templates import load, parse_sets, resolved_yaml

    print(resolved_yaml(load(name, profile, with_pair(parse_sets(set_), pair))), end="")


def with_pair(sets: dict, pair: str | None) -> dict:
    from paperlab.lab.templates import PAIR

    return {PAIR: pair, **sets} if pair is not None else sets



@templates_app.command("new")
def templates_new(name: str, source: str = typer.Option(..., "--from", help="The shipped (or your) template to "
                                                        "start from, e.g. dkd."),
                  paper: str = typer.Option(None, "--paper", help="The arXiv ID of the paper it reproduces.")) -> None:
    """Write an editable copy of a template into the workspace: its recipe kept, claims emptied."""
    from paperlab.lab.scaffold import new_template
    from paperlab.settings import load

    path = new_template(load().home, name, source, paper)
    print(f"wrote {path}; edit it, then `paperlab run {name} --profile smoke`")


methods_app = typer.Typer(help="Distillation methods, shipped and your own ($PAPERLAB_HOME/methods/*.py).",
                          invoke_without_command=True, no_args_is_help=False)


@methods_app.callback()
def methods_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the methods: name, what they read of the nets, where each comes from."""
    if ctx.invoked_subcommand:
        return
    from paperlab.lab import extensions
    from paperlab.lab.distillers import REGISTRY

    extensions.load()
    rows = [{"name": n, "needs": sorted(c.needs), "taught": c.taught, "from": extensions.origin_of(c)}
            for n, c in sorted(REGISTRY.items())]
    if as_json:
        return print_json(rows)
    table(["method", "reads", "teacher", "from"],
          [[r["name"], ", ".join(r["needs"]) or "-", "yes" if r["taught"] else "no", r["from"]] for r in rows])


@methods_app.command("new")
def methods_new(name: str, source: str = typer.Option(..., "--from", help="The method to start from, e.g. kd.")) -> None:
    """Write a method file (the source method's code under the new name) and its test file into the workspace."""
    from paperlab.lab.scaffold import new_method
    from paperlab.settings import load

    code, test = new_method(load().home, name, source)
    print(f"wrote {code} and {test}; edit the loss, then `paperlab methods check {name}`")


@methods_app.command("check")
def methods_check(name: str, set_: list[str] = typer.Option([], "--set", help="distill.key=value (repeatable): "
                                                             "the method's parameters, where it has no default.")) -> None:
    """Try a method on the smoke pair in seconds: parameters, a finite scalar loss, gradients, determinism."""
    from paperlab.errors import BadInput
    from paperlab.lab.method_check import check
    from paperlab.lab.templates import parse_sets

    values = {}
    for key, value in parse_sets(set_).items():
        if not key.startswith("distill."):
            raise BadInput(f"--set {key}: methods check takes the method's own parameters, distill.KEY=VALUE")
        values[key.removeprefix("distill.")] = value
    findings = check(name, values)
    for finding in findings:
        print(finding.line())
    failed = [f for f in findings if not f.ok]
    if failed:
        raise typer.Exit(1)
