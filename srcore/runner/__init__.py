"""Running many notebooks: one headless (``execute``), several at once on GPUs, processes or cluster jobs
(``shards``), their run folders merged into one (``merge``), and finished runs into results/ (``promote``)."""
