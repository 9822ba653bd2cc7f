{% macro meta_delete_window(date_column='date', first_date=none) -%}
    {#-
        Pre-hook of the incremental models: on an incremental run, delete every row of the lookback
        window first (from `first_date`, a SQL date; default meta_window_start()), so dates that
        became empty in the lake do not keep stale rows. The model then
        appends the window straight from its select (incremental_strategy='append': every row it
        selects is inside the window; see macros/overrides/incremental.sql). Both happen in
        the model's one transaction, so a re-run of the same window gives the same table (idempotent).
    -#}
    {%- if execute and is_incremental() -%}
        delete from {{ this }} where {{ date_column }} >= {{ first_date or meta_window_start() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{% macro meta_create_temp_view(relation, sql) -%}
    {#- The temporary view an incremental `append` run inserts from (macros/overrides/incremental.sql). -#}
    create or replace temporary view {{ relation.include(database=false, schema=false) }} as (
        {{ sql }}
    )
{%- endmacro %}


{% macro temporary_relation_is_local() -%}
    {#- MotherDuck has no server-side temporary relations (dbt-duckdb then uses real tables). -#}
    {{ return(not adapter.is_motherduck()) }}
{%- endmacro %}
