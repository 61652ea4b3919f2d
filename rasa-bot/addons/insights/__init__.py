"""Measuring offers: each offer's life from firing to adoption, the holdout and its lift,
exported as Prometheus metrics and a JSON funnel (the last stage of the data flow:
ingest → activity → triggers → gate → delivery → CTAs → insights)."""
