{% macro get_where_subquery(relation) -%}
    {#-
        Overrides dbt's test `where` handling to support one placeholder, `__lookback_window_start__`:
        the first date of the incremental window (see meta_window_start), or no limit on
        --full-refresh runs. Tests on the large incremental marts check the rows this run (re)wrote.
    -#}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__lookback_window_start__' in where -%}
            {%- set start = "date '0001-01-01'" if flags.FULL_REFRESH else meta_window_start() -%}
            {%- set where = where | replace('__lookback_window_start__', start) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
