"""The evaluator: tables, cross-testing, figures and checks of padding sweeps (see evaluate.py).

One module per concept, in floors (a module imports only from the floors above it):

- ``collect`` finds and loads runs; ``stats``/``power`` the statistics; ``writers`` renders tables;
  ``paper`` reads the paper's numbers.
- ``summary``: per-run values summarised into rows against a reference row, the table every report shares.
- ``weights``: saved weights (a run's best checkpoint, or a single file) rebuilt in any padding on a val set.
- Reports: ``tables`` (Tables 2-3), ``plan`` (seeds for 80% power), ``timing`` (Table 1), ``cross`` (Table 4),
  ``checkpoint_eval`` + ``eval_cache`` (re-evaluate many checkpoints) under ``checkpoint_tables`` (Tables 2-3
  from checkpoints) and ``resolution`` (top-1 against test size), ``border_score`` (the border-artifact score,
  on ``activations``), ``figure_report`` (Figures 1, 3, 4 and activation maps, drawn with ``figures`` and
  ``per_image``), ``cell_check`` (recompute a printed table's summary cells: ``evaluate.py audit``).
"""
