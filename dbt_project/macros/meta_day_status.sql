{% macro meta_day_status(date_column, served_local_date) -%}
    {#-
        The day_status of an account-local date, from the account-local date at which it was served:
        `partial` when the day was not over yet (or when that moment is unknown: never present as
        complete what cannot be shown complete), `settled` once served var('restatement_days') (28)
        or more days after it (Meta no longer changes it), else `restating`.
    -#}
    case
        when {{ served_local_date }} is null or {{ date_column }} >= {{ served_local_date }} then 'partial'
        when {{ served_local_date }} - {{ date_column }} >= {{ var('restatement_days') }} then 'settled'
        else 'restating'
    end
{%- endmacro %}


{% macro meta_minor_unit(currency) -%}
    {#- One minor unit of an account currency (Meta's currency offset: 1 for zero-decimal currencies). -#}
    case
        when upper({{ currency }}) in ('{{ var("zero_decimal_currencies") | join("', '") }}') then 1.0
        else 0.01
    end
{%- endmacro %}
