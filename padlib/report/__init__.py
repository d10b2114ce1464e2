"""The evaluator: tables, cross-testing, figures and audits of padding sweeps (see evaluate.py).

One module per job: ``collect`` finds and loads runs, ``stats`` summarises groups of runs, ``writers``
renders tables, ``tables``/``cross``/``timing`` build the paper's Tables 2-3/4/1, ``figures``,
``per_image`` and ``activations`` draw its Figures 1, 3 and 4, and ``table_audit`` checks printed tables.
``checkpoint_eval`` re-evaluates many checkpoints (with ``eval_cache``), under ``checkpoint_tables``
(Tables 2-3 from checkpoints) and ``resolution`` (top-1 against test size).
"""
