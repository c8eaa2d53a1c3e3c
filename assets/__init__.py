"""Asset definitions, one module per stage (ingest, publish, ...)."""
