"""The Parquet lake: row conversion (:mod:`.rows`), partition writing (:mod:`.partitions`) and job
state (:mod:`.state`)."""
