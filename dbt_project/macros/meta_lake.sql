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
        whole project still builds. Decided when the model runs (each build re-creates the views).
    -#}
    {%- set relation = source('meta', dataset) -%}
    {%- if execute and not meta_lake_has_files(dataset) -%}
        {{ log("meta_lake_source: no files for " ~ dataset ~ " under " ~ meta_lake_root() ~ "; using an empty relation", info=true) }}
        {{- meta_lake_empty_relation(dataset) -}}
    {%- else -%}
        {{- relation -}}
    {%- endif -%}
{%- endmacro %}


{% macro meta_lake_empty_relation(dataset) -%}
    {#- Columns and DuckDB types of each dataset as read from Parquet (schemas.py + partition keys). -#}
    {%- set action_stat = 'struct(action_type varchar, "value" decimal(18,6), "1d_click" decimal(18,6), "7d_click" decimal(18,6), "28d_click" decimal(18,6), "1d_view" decimal(18,6))[]' -%}
    {%- set columns = {
        'insights': [
            ('account_name', 'varchar'), ('account_currency', 'varchar'),
            ('campaign_id', 'varchar'), ('campaign_name', 'varchar'), ('adset_id', 'varchar'),
            ('adset_name', 'varchar'), ('ad_id', 'varchar'), ('ad_name', 'varchar'),
            ('date_start', 'date'), ('date_stop', 'date'), ('spend', 'decimal(18,6)'),
            ('impressions', 'bigint'), ('clicks', 'bigint'), ('reach', 'bigint'),
            ('frequency', 'decimal(18,6)'), ('cpm', 'decimal(18,6)'), ('ctr', 'decimal(18,6)'),
            ('inline_link_clicks', 'bigint'), ('actions', action_stat), ('action_values', action_stat),
            ('cost_per_action_type', action_stat), ('attribution_setting', 'varchar'),
            ('_report_run_id', 'varchar'), ('_extracted_at', 'timestamp with time zone'),
            ('account_id', 'varchar'), ('date', 'date'),
        ],
        'insights_account_totals': [
            ('account_currency', 'varchar'), ('spend', 'decimal(18,6)'), ('impressions', 'bigint'),
            ('clicks', 'bigint'), ('timezone_name', 'varchar'), ('served_at', 'timestamp with time zone'),
            ('served_local_date', 'date'), ('_extracted_at', 'timestamp with time zone'),
            ('account_id', 'varchar'), ('date', 'date'),
        ],
        'accounts': [
            ('name', 'varchar'), ('currency', 'varchar'), ('timezone_name', 'varchar'),
            ('timezone_offset_hours_utc', 'double'), ('promoted_page_ids', 'varchar[]'),
            ('_extracted_at', 'timestamp with time zone'), ('account_id', 'varchar'),
        ],
        'campaigns': [
            ('campaign_id', 'varchar'), ('name', 'varchar'), ('objective', 'varchar'), ('status', 'varchar'),
            ('created_time', 'timestamp with time zone'), ('effective_status', 'varchar'), ('configured_status', 'varchar'), ('updated_time', 'timestamp with time zone'),
            ('_extracted_at', 'timestamp with time zone'), ('account_id', 'varchar'),
        ],
        'adsets': [
            ('adset_id', 'varchar'), ('campaign_id', 'varchar'), ('name', 'varchar'),
            ('optimization_goal', 'varchar'), ('status', 'varchar'),
            ('created_time', 'timestamp with time zone'), ('effective_status', 'varchar'), ('configured_status', 'varchar'), ('updated_time', 'timestamp with time zone'),
            ('_extracted_at', 'timestamp with time zone'), ('account_id', 'varchar'),
        ],
        'ads': [
            ('ad_id', 'varchar'), ('adset_id', 'varchar'), ('campaign_id', 'varchar'), ('name', 'varchar'),
            ('status', 'varchar'), ('created_time', 'timestamp with time zone'), ('effective_status', 'varchar'), ('configured_status', 'varchar'), ('updated_time', 'timestamp with time zone'),
            ('_extracted_at', 'timestamp with time zone'), ('account_id', 'varchar'),
        ],
        'pages': [
            ('name', 'varchar'), ('_extracted_at', 'timestamp with time zone'), ('page_id', 'varchar'),
            ('extractor', 'varchar'),
        ],
        'leads': [
            ('lead_id', 'varchar'), ('created_time', 'timestamp with time zone'), ('form_id', 'varchar'),
            ('ad_id', 'varchar'), ('ad_name', 'varchar'), ('adset_id', 'varchar'), ('adset_name', 'varchar'),
            ('campaign_id', 'varchar'), ('campaign_name', 'varchar'), ('is_organic', 'boolean'),
            ('platform', 'varchar'), ('email_sha256', 'varchar'), ('phone_sha256', 'varchar'),
            ('custom_disclaimer_responses', 'struct(checkbox_key varchar, is_checked boolean)[]'),
            ('_extracted_at', 'timestamp with time zone'), ('page_id', 'varchar'), ('date', 'date'),
        ],
        'lead_answers': [
            ('lead_id', 'varchar'), ('form_id', 'varchar'), ('question', 'varchar'), ('value', 'varchar'),
            ('value_is_hashed', 'boolean'), ('_extracted_at', 'timestamp with time zone'),
            ('page_id', 'varchar'), ('date', 'date'),
        ],
        'conversations': [
            ('conversation_id', 'varchar'), ('updated_time', 'timestamp with time zone'),
            ('message_count', 'bigint'), ('participant_ids', 'varchar[]'), ('messages_out_of_reach', 'bigint'),
            ('first_message_id', 'varchar'), ('_extracted_at', 'timestamp with time zone'), ('page_id', 'varchar'), ('platform', 'varchar'),
            ('date', 'date'),
        ],
        'messages': [
            ('message_id', 'varchar'), ('conversation_id', 'varchar'),
            ('created_time', 'timestamp with time zone'), ('from_id', 'varchar'), ('to_ids', 'varchar[]'),
            ('is_from_page', 'boolean'), ('message', 'varchar'), ('_extracted_at', 'timestamp with time zone'),
            ('page_id', 'varchar'), ('platform', 'varchar'), ('date', 'date'),
        ],
    } -%}
    (
        select
        {%- for name, data_type in columns[dataset] %}
            cast(null as {{ data_type }}) as "{{ name }}"{{ "," if not loop.last }}
        {%- endfor %}
        where false
    )
{%- endmacro %}


{% macro meta_window_start(offset_days=0) -%}
    {#-
        First account-local date of the incremental window: `window_end` (var; default the newest
        insights partition date in the lake, else today in UTC) minus `lookback_days` - 1, minus
        `offset_days` (callers widen the window to read UTC-dated partitions around local dates).
        Returned as a SQL date literal, evaluated when the model runs.
    -#}
    {%- if not execute -%}{{ return("date '1970-01-01'") }}{%- endif -%}
    {%- set window_end = var('window_end', none) -%}
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
