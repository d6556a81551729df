"""Log records for ``log.txt`` only: ``logger.info(..., extra=FILE_ONLY)`` (long dumps and
per-class tables; ``domaingen.engine.console`` keeps them off the console unless --verbose)."""
FILE_ONLY = {"file_only": True}
