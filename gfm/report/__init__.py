"""Stage 6: the paper's tables, figures and findings from the stage outputs, and the HTML pages.

Layer 6: imports only gfm.core, gfm.evaluate.metrics and gfm.evaluate.fusions; reads the other stages' files,
never their code.

* ``stage``        -- :func:`gfm.report.stage.run`, the one entry of notebooks/06_paper.ipynb.
* ``inputs``       -- the stage output folders it reads (the seeds / run-folder contract).
* ``numbers``      -- the paper's numbers (``paper_numbers.yaml``), one loader.
* ``experiments``  -- this run's experiment configurations as the paper's rows.
* ``tables``       -- Tables 1-5 and 7 in the paper's layout, this run beside the paper; ``table6`` -- Table 6
  (test ratios).
* ``summaries``    -- this run's numbers per experiment (mean and 95 % interval over seeds).
* ``render``       -- :class:`PaperTable` and ``save_frame`` (CSV + HTML).
* ``claims``       -- the paper's claims as data; ``judge`` judges them; ``stats`` the paired bootstrap.
* ``findings``     -- the claims judged on the stage outputs: metrics/findings.json, table, forest plot.
* ``figures``      -- the figures the report draws from files (training curves, domain gap, COMP-Track).
* ``html``         -- offline HTML pages of the executed notebooks and the index (the ``html`` stage).
"""
