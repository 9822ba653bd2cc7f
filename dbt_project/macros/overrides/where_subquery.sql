{% macro get_where_subquery(relation) -%}
    {% do return(adapter.dispatch('get_where_subquery', 'dbt')(relation)) %}
{%- endmacro %}

{% macro default__get_where_subquery(relation) -%}
    {% set where = config.get('where', '') %}
    {% if where %}
        {#-- meta: `__lookback_window_start__` is the first date of the incremental window (meta_window_start),
             no limit on --full-refresh runs: tests on the large incremental marts check the rows the run (re)wrote --#}
        {%- if '__lookback_window_start__' in where -%}
            {%- set start = "date '0001-01-01'" if flags.FULL_REFRESH else meta_window_start() -%}
            {%- set where = where | replace('__lookback_window_start__', start) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {% do return(filtered) %}
    {%- else -%}
        {% do return(relation) %}
    {%- endif -%}
{%- endmacro %}
