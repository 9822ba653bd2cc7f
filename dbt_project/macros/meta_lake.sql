{#- How staging models read the lake. -#}

{% macro meta_lake_root() -%}
    {{ return(env_var('META_LAKE_ROOT', '../data/lake').rstrip('/')) }}
{%- endmacro %}


{% macro meta_lake_glob(dataset) -%}
    {#- The file glob of a dataset, from the source's `meta.lake_glob` (one place: _meta__sources.yml). -#}
    {%- set node = graph.sources['source.meta_ads.meta.' ~ dataset] -%}
    {{ return(meta_lake_root() ~ '/' ~ node.meta.lake_glob) }}
{%- endmacro %}


{% macro meta_lake_has_files(dataset) -%}
    {%- set result = run_query("select count(*) from glob('" ~ meta_lake_glob(dataset) ~ "')") -%}
    {{ return(result.columns[0].values()[0] > 0) }}
{%- endmacro %}


{% macro meta_lake_source(dataset) -%}
    {#-
        The source relation (read_parquet over the hive partitions), or, when the dataset has no files
        yet (e.g. no Page configured for conversations), an empty relation with the lake columns, so the
        whole project still builds. Decided when the model runs. In an incremental run of a staging
        model (the lake's dated datasets), only the `date=` partitions from meta_staging_cutoff() on
        (meta_lake_partitions_since); in a full build of one, all of them, date by date.
    -#}
    {%- set relation = source('meta', dataset) -%}
    {%- if execute and is_incremental() -%}
        {{- meta_lake_partitions_since(dataset, relation, meta_staging_cutoff()) -}}
    {%- elif execute and not meta_lake_has_files(dataset) -%}
        {{ log("meta_lake_source: no files for " ~ dataset ~ " under " ~ meta_lake_root() ~ "; using an empty relation", info=true) }}
        {{- meta_lake_empty_relation(dataset) -}}
    {%- elif execute and config.get('materialized') == 'incremental' -%}
        {#-
            Full build of a dated staging model: every partition, listed date by date, so the rows land
            in the build file roughly in date order and an incremental run's window delete empties
            whole row groups (a checkpoint then drops them instead of rewriting the rest).
        -#}
        {{- meta_lake_partitions_since(dataset, relation, "date '0001-01-01'") -}}
    {%- else -%}
        {{- relation -}}
    {%- endif -%}
{%- endmacro %}


{% macro meta_lake_partitions_since(dataset, relation, first_date) -%}
    {#-
        The source relation over the `date=` partitions from `first_date` (a SQL date) on only: its
        glob replaced by one glob per such date, so DuckDB opens only their files (union_by_name opens
        every file a glob matches when the query is bound, whatever the filter). An empty relation with
        the lake columns when there is none.
    -#}
    {%- set glob = meta_lake_glob(dataset) -%}
    {%- set sql -%}
        select distinct regexp_extract(file, 'date=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) as day
        from glob('{{ glob }}')
        where cast(regexp_extract(file, 'date=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) as date) >= {{ first_date }}
        order by day
    {%- endset -%}
    {%- set days = run_query(sql).columns[0].values() -%}
    {%- if days | length == 0 -%}
        {{- return(meta_lake_empty_relation(dataset)) -}}
    {%- endif -%}
    {%- set rendered = relation | string -%}
    {%- set quoted = "'" ~ glob ~ "'" -%}
    {%- if quoted not in rendered -%}
        {{ exceptions.raise_compiler_error("meta_lake_partitions_since: the glob " ~ quoted ~ " of source " ~ dataset ~ " is not in its external_location " ~ rendered ~ "; both come from META_LAKE_ROOT and the source's meta.lake_glob (_meta__sources.yml)") }}
    {%- endif -%}
    {%- set globs = [] -%}
    {%- for day in days -%}
        {%- do globs.append("'" ~ glob | replace('date=*', 'date=' ~ day) ~ "'") -%}
    {%- endfor -%}
    {{- return(rendered | replace(quoted, '[' ~ globs | join(', ') ~ ']')) -}}
{%- endmacro %}


{% macro meta_staging_cutoff() -%}
    {#-
        First `date=` partition an incremental run of a dated staging model deletes and reads again:
        the incremental window's first date (meta_window_start) minus 3 days, more than any model's
        offset around local dates (UTC-dated leads and message snapshots). Older partitions are kept as
        the previous build read them, as the incremental marts keep their older rows: a change to the
        lake before the window needs a build with --full-refresh.
    -#}
    {{- return(meta_window_start(offset_days=3)) -}}
{%- endmacro %}


{% macro meta_delete_partitions(date_column) -%}
    {#-
        Pre-hook of the dated staging models: on an incremental run, delete the rows of the partitions
        meta_lake_source reads again (`date_column` >= meta_staging_cutoff()); the model then appends
        them (incremental_strategy='append'), in the model's one transaction.
    -#}
    {{- meta_delete_window(date_column, first_date=meta_staging_cutoff()) -}}
{%- endmacro %}


{% macro meta_lake_empty_relation(dataset) -%}
    {#-
        An empty relation with the columns and DuckDB types of a dataset as read from Parquet: the
        source's `meta.lake_columns`, generated from schemas.py (meta_ads_elt.dbt_contract).
    -#}
    {%- set node = graph.sources['source.meta_ads.meta.' ~ dataset] -%}
    (
        select
        {%- for name, data_type in node.meta.lake_columns %}
            cast(null as {{ data_type }}) as "{{ name }}"{{ "," if not loop.last }}
        {%- endfor %}
        where false
    )
{%- endmacro %}


{% macro meta_window_start(offset_days=0) -%}
    {#-
        First account-local date of the incremental window: `window_end` (var, else the env var
        META_DBT_WINDOW_END, which dbt_runner.py sets; default the newest insights partition date in
        the lake, else today in UTC) minus `lookback_days` - 1, minus `offset_days` (callers widen the
        window to read UTC-dated partitions around local dates). Returned as a SQL date literal,
        evaluated when the model runs. dbt_runner.py passes the window's end as an env var, not a var:
        dbt re-parses the whole project when the command line's vars change, i.e. every day.
    -#}
    {%- if not execute -%}{{ return("date '1970-01-01'") }}{%- endif -%}
    {%- set window_end = var('window_end', none) -%}
    {%- if window_end is none or window_end == '' -%}
        {%- set window_end = env_var('META_DBT_WINDOW_END', '') -%}
    {%- endif -%}
    {%- if window_end is none or window_end == '' -%}
        {%- if meta_lake_has_files('insights') -%}
            {%- set sql -%}
                select cast(max(cast(regexp_extract(file, 'date=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) as date)) as varchar)
                from glob('{{ meta_lake_glob('insights') }}')
            {%- endset -%}
            {%- set window_end = run_query(sql).columns[0].values()[0] -%}
        {%- else -%}
            {%- set window_end = run_query("select cast(current_date as varchar)").columns[0].values()[0] -%}
        {%- endif -%}
    {%- endif -%}
    {%- set days_back = var('lookback_days') | int - 1 + offset_days | int -%}
    {{ return("cast(date '" ~ window_end ~ "' - " ~ days_back ~ " as date)") }}
{%- endmacro %}


{% macro meta_local_date(utc_timestamp, timezone_name) -%}
    {#- The local calendar date of a UTC instant in an IANA timezone (DuckDB ICU). -#}
    cast(timezone({{ timezone_name }}, {{ utc_timestamp }}) as date)
{%- endmacro %}


{% macro meta_ratio(numerator, denominator) -%}
    {#- A ratio recomputed from sums: NULL when the denominator is 0 or NULL, never averaged. -#}
    cast(round({{ numerator }} / nullif({{ denominator }}, 0), 6) as decimal(18,6))
{%- endmacro %}
