"""Views wing: what people look at, rendered from results the other wings produce. The run
report and live view, the validate-data report, listings of runs and versions, metric
summaries, the run comparison table, log records and charts (PNG, matplotlib without a
display). Only the faces import it, except ``views.text``: the one renderer of text from
outside (escaped, bounded), a leaf that every wing may use for what it records or raises."""
