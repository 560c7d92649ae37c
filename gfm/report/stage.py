"""Stage 6 (notebooks/06_paper.ipynb): the paper report, built from the other stages' outputs.

:func:`run` reads what stages 1-5 wrote (gfm.report.inputs), puts this run beside the paper's
Tables 1-7 (gfm.report.tables, gfm.report.table6), judges the paper's claims (gfm.report.findings),
draws the report's own figures (gfm.report.figures, the forest plot) and lists the figures stages
2, 3 and 5 drew. It writes, each file atomically and the folder as a whole:

* ``<report.out>/paper/``: ``paper_numbers``, ``overview``, ``table1`` ... ``table7``,
  ``table1_<benchmark>`` and ``table2_<benchmark>`` for every benchmark evaluated besides AM-2k,
  ``fusions`` (both hybrid fusions), ``table6_best`` and ``findings`` as CSV + HTML; ``findings.json`` (every comparison of every
  claim); ``forest.png``, ``training_curves.png``, ``domain_gap.png``, ``comp_track.png``
  (those that can be drawn);
* ``report.findings_out`` (``metrics/findings.json``): verdicts as words and numbers.
* ``report.headline_out`` (``metrics/headline.json``): verdict counts and each model's SAD, the
  pipeline's one declared metrics file (what ``dvc metrics show`` / ``dvc exp show`` print).

The committed runs under ``report.results`` (gfm.report.results: e.g. the study profile's) are read
back and set beside this run's findings, claim by claim (``committed_<name>`` CSV + HTML).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gfm.core.figures import save_figure
from gfm.core.io import atomic_dir, write_json
from gfm.evaluate.fusions import fusion_table
from gfm.report import experiments as ex
from gfm.report import figures, findings, inputs, results, stats, summaries, table6, tables
from gfm.report.numbers import paper_numbers, paper_values
from gfm.report.render import save_frame

__all__ = ["PaperReport", "run"]

#: The stages whose figures the report shows: name -> the params section holding its ``out``.
STAGE_FIGURES = {"bg20k": "stage 2: BG-20k", "compose": "stage 3: composition routes",
                 "evaluate": "stage 5: evaluation"}


@dataclass(frozen=True)
class PaperReport:
    """What :func:`run` built (the notebook shows it).

    Attributes
    ----------
    out : Path
        ``<report.out>/paper``.
    data : str
        What this run evaluated on.
    overview, numbers, table6_best, findings_table : DataFrame
        This run's experiments; the paper's numbers; Table 6's best settings; the judged claims.
    tables : dict
        ``table1`` ... ``table7``, then ``table1_<benchmark>`` / ``table2_<benchmark>`` for the other
        benchmarks (gfm.report.render.PaperTable).
    findings : dict
        gfm.report.judge.judge's full result.
    figures : dict
        The report's own figures that were drawn: name -> PNG path.
    not_drawn : dict
        The report's figures that were not drawn: name -> why.
    stage_figures : dict
        ``{stage: [(caption, PNG path), ...]}`` for stages 2, 3 and 5 (empty: not run).
    seconds : float
        Wall time of :func:`run`.
    fusions : DataFrame
        Both hybrid fusions per benchmark and experiment (gfm.evaluate.fusions.fusion_table).
    protocol : dict
        How the evaluate stage tested (``<evaluate.out>/protocol.json``; {} when not written).
    committed : list
        ``(run, verdicts)`` per committed run of ``report.results``: the gfm.report.results.CommittedRun
        and its verdicts beside this run's (written as ``committed_<name>``).
    """

    out: Path
    data: str
    overview: pd.DataFrame
    numbers: pd.DataFrame
    tables: dict
    table6_best: pd.DataFrame
    findings: dict
    findings_table: pd.DataFrame
    figures: dict
    not_drawn: dict
    stage_figures: dict
    seconds: float
    fusions: pd.DataFrame = field(default_factory=pd.DataFrame)
    protocol: dict = field(default_factory=dict)
    committed: list = field(default_factory=list)

    def show_figure(self, name: str) -> None:
        """Display the report's figure ``name`` (a PNG of :attr:`out`), or why it was not drawn."""
        from IPython.display import Image, Markdown, display

        if name in self.figures:
            display(Image(filename=str(self.figures[name])))
        else:
            display(Markdown(f"*{self.not_drawn.get(name, f'no figure {name!r}')}*"))

    def show_committed(self) -> None:
        """Display each committed run: what, where and how long it ran, its verdicts beside this run's,
        its Tables 4 and 5 and its forest plot; or that there is none."""
        from IPython.display import Image, Markdown, display

        if not self.committed:
            display(Markdown("*no committed runs (`report.results`)*"))
        for run, verdicts in self.committed:
            display(Markdown(f"### `{run.folder}`\n\n{run.describe()}."), verdicts)
            for name in ("table4", "table5"):
                rows = run.run_rows(name)
                if rows is not None:
                    display(Markdown(f"**{run.name}: {name}, its rows** (`{run.paper / name}.csv`)"), rows)
            forest = run.figure("forest")
            if forest is not None:
                display(Markdown(f"**{run.name}: forest plot**"), Image(filename=str(forest)))

    def show_stage_figures(self, stage: str) -> None:
        """Display the figures stage ``stage`` (bg20k, compose, evaluate) drew, each with its
        caption, or say that it has not run."""
        from IPython.display import Image, Markdown, display

        found = self.stage_figures.get(stage, [])
        if not found:
            display(Markdown(f"*not run: no figures of {STAGE_FIGURES.get(stage, stage)} "
                             f"(`<{stage}.out>/{inputs.FIGURES}/*.png`)*"))
        for caption, path in found:
            display(Markdown(f"**{caption}** (`{path}`)"), Image(filename=str(path)))


def run(params, *, n_boot: int = stats.N_BOOT, seed: int = 0) -> PaperReport:
    """Build the paper report of the run configured by ``params`` (gfm.core.config.Params).

    ``n_boot`` and ``seed``: the bootstrap of the findings (gfm.report.stats).
    """
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    cfg, evaluation = params.report, Path(params.evaluate.out)
    out = Path(cfg.out) / "paper"
    metrics = inputs.load_metrics(cfg.metrics_dir)
    data = inputs.run_data(metrics.get("download"), params.profile)
    numbers = paper_numbers()
    grid = ex.from_params(params)
    planned = ex.load_experiments(cfg.paper_profile) if Path(cfg.paper_profile).is_file() else None

    evidence = findings.gather(evaluation, experiments=list(grid), metrics=metrics, compose_out=params.compose.out)
    summary = summaries.experiment_summary(evidence.per_image, grid, evaluated=metrics.get("evaluate"))
    references = summaries.reference_summary(inputs.baselines(evaluation))
    table6_grid = inputs.read_csv(evaluation / "table6.csv")
    protocol = inputs.protocol(evaluation)
    table5 = summaries.table5_summary(*inputs.table5_runs(evaluation), grid)
    common = dict(references=references, numbers=numbers, data=data)
    built = {"table1": tables.table1(summary, planned=planned, **common),
             "table2": tables.table2(**common),
             "table3": tables.table3(summary, planned=planned, **common),
             "table4": tables.table4(summary, planned=planned, **common),
             "table5": tables.table5(summary, planned=planned, protocol=table5, table5_d=protocol.get("table5_d"),
                                     **common),
             "table6": table6.table6(table6_grid, per_image=inputs.read_csv(evaluation / inputs.TABLE6_PER_IMAGE),
                                     numbers=numbers, data=data),
             "table7": tables.table7(inputs.read_csv(evaluation / "complexity.csv"), numbers=numbers)}
    for name, bench in inputs.other_benchmarks(evaluation).items():
        bench_summary = summaries.experiment_summary(inputs.per_image_tables(bench["folder"], list(grid)), grid)
        for table in tables.benchmark_tables(name, bench["title"], bench_summary, numbers=numbers, planned=planned,
                                             references=summaries.reference_summary(inputs.baselines(bench["folder"]))):
            built[table.name] = table
    fusions = fusion_table(inputs.fusions(evaluation))
    best = table6.table6_best(table6_grid, numbers=numbers, data=data)
    result = findings.judge_outputs(evidence, grid, n_boot=n_boot, seed=seed, numbers=paper_values(numbers))
    claims = findings.findings_table(result)
    committed = [(run, results.comparison_table(result, run.findings, (f"this run ({params.profile})",
                                                                       f"{run.name} (committed)")))
                 for run in results.discover(cfg.results)]
    overview = tables.overview(summary, data=data)

    drawers = {
        "forest": lambda: findings.forest_plot(result),
        "training_curves": lambda: figures.training_curves(inputs.training_losses(params.train.out, list(grid))),
        "domain_gap": lambda: figures.domain_gap(metrics.get("compose") or {}),
        "comp_track": lambda: figures.comp_track(summary, numbers=numbers, data=data),
    }
    drawn, not_drawn = {}, {}
    with atomic_dir(out) as tmp:
        save_frame(numbers, tmp, "paper_numbers", title="The paper's numbers (transcribed from its prose)")
        save_frame(overview, tmp, "overview", title="This run's experiments and the paper's rows")
        for table in built.values():
            table.save(tmp)
        for run, verdicts in committed:
            save_frame(verdicts, tmp, f"committed_{run.name}",
                       title=f"Verdicts: this run beside the committed run {run.folder} ({run.describe()})")
        save_frame(best, tmp, "table6_best", title="Table 6: the best settings, the paper's and this run's")
        save_frame(fusions, tmp, "fusions", title="The hybrid test's two fusions: official (the released code's) "
                                                  "and upsampled; difference = upsampled - official")
        save_frame(claims, tmp, "findings", title="Findings: the paper's claims on this run")
        write_json(tmp / "findings.json", result)
        for name, draw in drawers.items():
            try:
                fig = draw()
            except ValueError as error:
                not_drawn[name] = f"not run: {error}"
                continue
            save_figure(fig, tmp, name)
            plt.close(fig)
            drawn[name] = out / f"{name}.png"
    findings.write_findings_metrics(cfg.findings_out, result)
    write_json(cfg.headline_out, findings.headline_metrics(result, metrics.get("evaluate")))
    stage_figures = {stage: inputs.stage_figures(getattr(params, stage).out) for stage in STAGE_FIGURES}
    return PaperReport(out=out, data=data, overview=overview, numbers=numbers, tables=built, table6_best=best,
                       findings=result, findings_table=claims, figures=drawn, not_drawn=not_drawn,
                       stage_figures=stage_figures, seconds=time.perf_counter() - start, fusions=fusions,
                       protocol=protocol, committed=committed)
