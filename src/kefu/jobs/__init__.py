"""Background work: the worker loop and one module per job."""
