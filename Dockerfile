# The pipeline's Airflow image: the official Airflow image plus requirements.txt, pinned by constraints.txt.
# (Dependencies are baked in at build time, not installed at start via _PIP_ADDITIONAL_REQUIREMENTS.)
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt constraints.txt /opt/airflow/requirements/
RUN pip install --no-cache-dir -r /opt/airflow/requirements/requirements.txt \
        -c /opt/airflow/requirements/constraints.txt
# The package itself registers it as an Airflow provider (the `meta_graph_api` connection type and its
# form in the UI); at run time the code is read from the mounted plugins folder, first on PYTHONPATH.
COPY pyproject.toml README.md LICENSE /opt/airflow/src/
COPY plugins/meta_ads_elt /opt/airflow/src/plugins/meta_ads_elt
RUN pip install --no-cache-dir --no-deps /opt/airflow/src

ENV PYTHONPATH=/opt/airflow/plugins:/opt/airflow/include \
    META_PIPELINE_CONFIG=/opt/airflow/include/pipeline.yaml \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False
