"""Meta (Facebook / Instagram) ads, leads and conversations: Airflow hooks, operators and triggers."""
