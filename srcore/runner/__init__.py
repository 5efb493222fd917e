"""Running many notebooks: one headless (``execute``), several at once on GPUs, processes or cluster jobs
(``shards``), and finished runs into results/ (``promote``)."""
