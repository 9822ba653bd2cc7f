"""Print the Airflow pools the DAG needs, as `airflow pools import` reads them (used by docker-compose)."""

from __future__ import annotations

import json

from meta_ads_elt.config import load_config
from meta_ads_elt.pools import pools_import_document

if __name__ == "__main__":
    print(json.dumps(pools_import_document(load_config()), indent=2))
