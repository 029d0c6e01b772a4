"""Experiment commands: templates, run, sweep, runs, ui. torch and mlflow load only when a command runs."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from paperlab.cli.output import print_json, table

from paperlab.cli.templates import PAIR_HELP, templates_app, with_pair as _with_pair


def _settings():
    from paperlab.settings import load

    return load()


def _link_paper(spec) -> None:
    """A template's own paper is linked when it is in the library."""
    from paperlab.errors import NotFound
    from paperlab.library.papers import link_template

    if spec.paper is None:
        return
    try:
        link_template(_settings(), spec.paper, spec.name)
    except NotFound:
        pass


def run(
    template: str = typer.Argument(..., help="Template name, e.g. kd-hinton."),
    profile: str = typer.Option(None, "--profile", "-p", help="smoke, quick, paper (the default) or another of "
                                "the template's profiles (`paperlab templates`)."),
    pair: str = typer.Option(None, "--pair", help=PAIR_HELP),
    set_: list[str] = typer.Option([], "--set", help="key=value override, e.g. distill.temperature=4."),
    seed: int = typer.Option(None, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    dataset: str = typer.Option(None, "--dataset", help="digits, mnist, fashion-mnist, cifar10, cifar100, or folder "
                                "(your images in the ImageFolder layout, from --data-dir)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="A folder holding the dataset (IDX files, or CIFAR's "
                                                          "extracted python version)."),
    epochs: int = typer.Option(None, "--epochs"),
    only: list[str] = typer.Option([], "--stage", help="Run only this stage (repeatable); its teacher comes from "
                                                       "the cache or is trained first."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run of the same command."),
    retrain_teacher: bool = typer.Option(False, "--retrain", "--retrain-teacher",
                                         help="Ignore cached teachers and baselines; train them again."),
    as_json: bool = typer.Option(False, "--json"),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Train on N processes of this machine (torchrun, "
                                                          "DistributedDataParallel): one per GPU, or CPU processes."),
    compile_mode: str = typer.Option("off", "--compile", help="Run the nets through torch.compile: default, "
                                     "reduce-overhead (CUDA graphs on a GPU) or max-autotune; off (the default) "
                                     "trains eagerly."),
) -> None:
    """Train teacher, baseline student and distilled student; track everything in MLflow."""
    from paperlab.lab.templates import load, parse_sets

    from paperlab.lab.spec import COMPILE_MODES

    modes = ("off", *COMPILE_MODES)
    if compile_mode not in modes:
        from paperlab.errors import BadInput

        raise BadInput(f"--compile {compile_mode[:40]!r}: give one of {', '.join(modes)}")

    sets = _with_pair(parse_sets(set_), pair)
    for key, value in (("seed", seed), ("dataset", dataset), ("train.epochs", epochs)):
        if value is not None:
            sets[key] = value
    if profile is not None and not profile.strip():
        from paperlab.errors import BadInput

        raise BadInput("--profile is empty; give smoke, quick or paper")
    spec = load(template, profile or "paper", sets)  # bad input is refused before any worker starts
    from paperlab.lab import distributed as dd

    if nproc > 1:
        if dd.launched():
            from paperlab.errors import BadInput

            raise BadInput("--nproc: this is already a torchrun worker; give --nproc to paperlab, or run torchrun")
        sys.exit(dd.launch(nproc, _without_nproc(sys.argv[1:]), device))  # rank 0 has said what there was to say
    device = dd.start(device)  # under torchrun: join its workers
    from paperlab.lab.pipeline import Run
    from paperlab.lab.trainer import pick_device

    found = pick_device(device)
    if profile is None:
        minutes = spec.estimate_minutes.get("cuda" if found.type == "cuda" else "cpu")
        hint = "; try --profile quick on a CPU" if found.type == "cpu" else ""
        took = f"about {minutes:g} min" if minutes is not None else "not yet measured"
        print(f"profile paper (the paper's own recipe): {took} on {found.type}{hint}", file=sys.stderr)
    result = Run(spec, _settings(), device, data_dir, resume, retrain_teacher, " ".join(["paperlab", *sys.argv[1:]]),
                 compile_mode=None if compile_mode == "off" else compile_mode).run_all(only)
    speaks = dd.leader()  # rank 0 reports for all
    dd.stop()
    if not speaks:
        return
    _link_paper(spec)
    if as_json:
        return print_json({"parent_run_id": result.parent_run_id, "device": result.device,
                           "stages": [{"stage": s.stage, "run_id": s.run_id, "test_error": s.test_error,
                                       "test_error_last": s.test_error_last, "test_acc": s.test_acc,
                                       "test_acc_last": s.test_acc_last, "best_epoch": s.best_epoch,
                                       "reused": s.reused, "n_params": s.n_params, "role": s.role,
                                       "taught_by": s.taught_by, "wall_seconds": round(s.wall_seconds, 2)}
                                      for s in result.stages],
                           "effects": {name: e.as_dict() for name, e in _effects(spec, result.stages).items()}})
    rows = []
    for s in result.stages:
        claim = spec.claim_for(s.stage)
        text = "-"
        if claim:
            unit = " % top-1" if claim.metric == "top1" else " errors"
            when = "epoch not stated" if claim.epoch == "unstated" else f"{claim.epoch} epoch"
            text = f"{claim.value:g}{unit}, {when}" + (
                "" if claim.dataset == spec.dataset else f" (paper: {claim.dataset})")
        rows.append([s.stage, s.test_error, s.test_error_last, f"{s.test_acc:.4f}", s.best_epoch,
                     "cached" if s.reused else f"{s.wall_seconds:.0f}s", text])
    table(["stage", "test errors (best epoch)", "last epoch", "test acc", "best epoch", "time", "paper's claim"],
          rows, title=f"{spec.name} / {spec.profile} on {spec.dataset} ({result.device}); test errors are counts; "
                      f"MLflow parent run {result.parent_run_id}")
    for line in [*(f"{name}: {e.text()}" for name, e in _effects(spec, result.stages).items()), *result.findings]:
        print(line)


def _without_nproc(args: list[str]) -> list[str]:
    """The command line for each worker: the same, less --nproc."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _effects(spec, stages) -> dict:
    """Per distilled stage: errors saved against the baseline student, share of the gap closed, and whether
    one seed can tell that from noise (the profile's measured spread)."""
    from paperlab.lab.effect import Spread, StageInfo, comparisons, effect, summarise

    by_name = {s.stage: s for s in stages}
    spread = Spread(spec.spread.errors, spec.spread.seeds) if spec.spread else None
    infos = [StageInfo(s.stage, s.role, s.taught_by, spec.stage(s.stage).init) for s in stages]
    return {name: summarise([effect(by_name[teacher].test_error, by_name[baseline].test_error,
                                    by_name[name].test_error)], spread)
            for name, teacher, baseline in comparisons(infos)}


def sweep(
    template: str = typer.Argument(...),
    grid: list[str] = typer.Option([], "--grid", help="key=v1,v2,... (repeatable), e.g. distill.temperature=1,4,20."),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Seeds 0..N-1 for every grid point."),
    profile: str = typer.Option("paper", "--profile", "-p"),
    pair: str = typer.Option(None, "--pair", help=PAIR_HELP),
    set_: list[str] = typer.Option([], "--set", help="key=value override for every point."),
    device: str = typer.Option("auto", "--device"),
    data_dir: Path = typer.Option(None, "--data-dir"),
    as_json: bool = typer.Option(False, "--json"),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted sweep of the same command."),
    study: str = typer.Option(None, "--study", help="Share this sweep among workers: run the same command on "
                              "each machine; each point runs once, a dead worker's point again elsewhere."),
    storage: str = typer.Option(None, "--storage", metavar="URL", help="Where a --study is kept: a database "
                                "every worker reaches (postgresql://host/sweeps); default: this workspace only."),
    batched: bool = typer.Option(False, "--batched", help="Train a stage that every point and seed trains alike "
                                 "(same net and recipe, a logit method, no batch norm or dropout) as one batched "
                                 "model; the numbers are those of the plain sweep."),
) -> None:
    """Run a grid of overrides (over seeds) under one MLflow parent run, training the teacher once."""
    from paperlab.lab.sweep import parse_grid, run_sweep
    from paperlab.lab.templates import parse_sets

    command = " ".join(["paperlab", *sys.argv[1:]])
    from paperlab.lab import distributed as dd

    if dd.launched():
        from paperlab.errors import BadInput

        raise BadInput("a sweep runs in one process, not under torchrun; share its points out with --study "
                       "instead, or run each point with `paperlab run ... --nproc N`")
    if study:
        from paperlab.lab.study import run_study, storage_url

        if batched:
            from paperlab.errors import BadInput

            raise BadInput("--batched trains one worker's points together; a --study shares them out instead")
        settings = _settings()
        sets = _with_pair(parse_sets(set_), pair)
        parent, results = run_study(study, storage_url(settings, storage), template, profile, sets,
                                    parse_grid(grid), seeds, settings, device, data_dir, command)
    else:
        if storage:
            from paperlab.errors import BadInput

            raise BadInput("--storage is where a --study is kept; give --study NAME too")
        parent, results = run_sweep(template, profile, _with_pair(parse_sets(set_), pair), parse_grid(grid), seeds,
                                    _settings(), device, data_dir, command, resume, batched)
    if as_json:
        return print_json({"parent_run_id": parent, "points": [
            {"overrides": p.overrides, "seed": p.seed, "stages": [
                {"stage": s.stage, "run_id": s.run_id, "test_error": s.test_error, "reused": s.reused}
                for s in p.stages]} for p in results]})
    table(["point", "seed", *["stage / test errors"]],
          [[",".join(f"{k}={v}" for k, v in p.overrides.items()), p.seed,
            "  ".join(f"{s.stage} {s.test_error}" for s in p.stages)] for p in results],
          title=f"sweep of {template} ({profile}); MLflow parent run {parent}")


def runs(template: str = typer.Option(None, "--template"), paper: str = typer.Option(None, "--paper"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """List tracked stage runs with their test errors, newest first."""
    from paperlab.lab.tracking import Tracker

    if paper:
        from paperlab.library.ids import normalise

        paper = normalise(paper)
    found = Tracker(_settings()).runs(template, paper)
    if as_json:
        return print_json(found)
    table(["run", "template", "profile", "stage", "status", "test errors", "parent"],
          [[r["run_id"], r["template"], r["profile"], r["stage"], r["status"],
            "" if r["test_error"] is None else f"{r['test_error']:g}", r["parent_run_id"]] for r in found],
          title=f"{len(found)} runs")


def ui(port: int = typer.Option(5000, "--port", min=1, max=65535),
       open_: bool = typer.Option(False, "--open", help="Open the runs table in a browser once the UI answers.")
       ) -> None:
    """Start the MLflow UI on 127.0.0.1 against paperlab's tracking store."""
    import os
    import socket

    from paperlab.errors import PaperlabError

    settings = _settings()
    with socket.socket() as probe:  # a port in use is one line here, not a server traceback later
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PaperlabError(f"cannot serve on 127.0.0.1:{port} ({exc.strerror}); choose another --port")
    from paperlab.lab.tracking import Tracker

    tracker = Tracker(settings)  # creates and migrates a fresh local store under its lock
    experiments = [(e.name, e.experiment_id) for e in tracker.client.search_experiments()
                   if e.name != "Default"]
    for name, experiment_id in experiments:
        tracker.experiment(name)  # tags older experiments, so the UI opens on their runs table
    base = f"http://127.0.0.1:{port}"
    urls = [(name, f"{base}/#/experiments/{experiment_id}/runs?viewStateShareKey=paperlab")
            for name, experiment_id in experiments]  # the stage runs with their test errors (tracking.SHARED_VIEW)
    args = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", settings.mlflow_uri,
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    if settings.mlflow_uri.startswith("sqlite:"):
        args += ["--default-artifact-root", settings.artifacts_dir.as_uri()]
    print(f"MLflow UI on {base} (Ctrl-C stops it); the runs of each template:", file=sys.stderr)
    for name, url in urls:
        print(f"  {name:<20} {url}", file=sys.stderr)
    sys.stderr.flush()
    if open_ and os.fork() == 0:  # a child waits for the server, opens the browser and leaves
        _open_when_up(port, urls[0][1] if urls else base)
        os._exit(0)
    # become the UI process, so that Ctrl-C and kill reach it with nothing left behind
    os.execve(sys.executable, args, {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})


def _open_when_up(port: int, url: str) -> None:
    import socket
    import time
    import webbrowser

    for _ in range(600):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                webbrowser.open(url)
                return
        time.sleep(0.1)


teachers_app = typer.Typer(help="Trained teachers in MLflow's model registry (shared on a team's tracking server).",
                           no_args_is_help=True)


@teachers_app.command("list")
def teachers_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Registered teachers: name (template.role.net.data), version, seed, profile, test errors."""
    from paperlab.lab.registry import teachers
    from paperlab.lab.tracking import Tracker

    found = teachers(Tracker(_settings()))
    if as_json:
        return print_json(found)
    table(["name", "version", "profile", "seed", "test errors", "run"],
          [[v["name"], v["version"], v["profile"], v["seed"], v["test_error"], v["run_id"]] for v in found],
          title=f"{len(found)} registered teachers")


@teachers_app.command("pull")
def teachers_pull(name: str = typer.Argument(..., help="A registered teacher, e.g. kd-hinton.teacher.cnn.digits"),
                  version: int = typer.Option(None, "--version", min=1, help="Default: the newest.")) -> None:
    """Put a registered teacher into this machine's cache: the next run of its recipe reuses it."""
    from paperlab.lab.registry import pull
    from paperlab.lab.tracking import Tracker

    settings = _settings()
    path = pull(Tracker(settings), settings.cache_dir, name, version)
    print(f"pulled {name} into {path}")


def register(app: typer.Typer) -> None:
    from paperlab.cli.templates import methods_app

    app.add_typer(templates_app, name="templates")
    app.add_typer(methods_app, name="methods")
    app.add_typer(teachers_app, name="teachers")
    app.command()(run)
    app.command()(sweep)
    app.command()(runs)
    app.command()(ui)
