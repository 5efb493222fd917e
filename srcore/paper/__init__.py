"""One paper's run: its parameters (``config``, the profiles), its data (``inputs``), its trained runs (``runs``) and
what a notebook does around its method (``experiment``)."""
