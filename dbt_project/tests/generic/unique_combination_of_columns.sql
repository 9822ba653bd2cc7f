{% test unique_combination_of_columns(model, combination_of_columns) %}
{#-
    Grain test: no two rows share the same values of `combination_of_columns` (nulls compare equal).
    In two steps, so that on 10M-row models DuckDB aggregates one 64-bit hash per row instead of the
    key columns themselves: the hashes seen more than once (real duplicates, or rare hash
    collisions), then the exact check, grouping by the key columns, on the rows with those hashes only.
-#}
{%- set columns = combination_of_columns | join(', ') -%}
with

repeated_hashes as (

    select hash({{ columns }}) as row_hash,
    from {{ model }}
    group by row_hash
    having count(*) > 1

),

candidates as (

    select {{ columns }},
    from {{ model }}
    where hash({{ columns }}) in (select repeated_hashes.row_hash from repeated_hashes)

),

grouped as (

    select
        {{ columns }},
        count(*) as n_rows,
    from candidates
    group by all

)

select *
from grouped
where n_rows > 1
{% endtest %}
