"""Stage 5 (Sect. 5.2 "Evaluation Metrics", 5.5 Table 6, 5.6 Table 7): every trained run scored on the
real validation images.

``metrics`` (the errors and the metric lists; imports only gfm.core), ``files`` (split, tables,
saved predictions), ``pool`` (metrics in worker processes), ``runs`` (run folders: experiment x
seed), ``run`` (the evaluation loop and summaries), ``fusions`` (both hybrid fusions averaged over
runs; imports only ``metrics``, the report uses it), ``baselines`` (blank and closed-form reference
mattes), ``table6``, ``complexity`` (Table 7 measured), ``figures`` (PNG files for the report) and
``stage`` (the stage entry, ``run(params)``).
"""
