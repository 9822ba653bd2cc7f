{% test unique_combination_of_columns(model, combination_of_columns) %}
{#- Grain test: no two rows share the same values of `combination_of_columns` (nulls compare equal). -#}
with grouped as (

    select
        {{ combination_of_columns | join(', ') }},
        count(*) as n_rows,
    from {{ model }}
    group by all

)

select *
from grouped
where n_rows > 1
{% endtest %}
