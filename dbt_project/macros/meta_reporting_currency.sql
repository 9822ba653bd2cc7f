{#-
    The optional reporting currency (var `reporting_currency`, e.g. 'EUR'; null: none). Money stays in
    each ad account's own currency in `spend`; the marts with money add, per row:
      reporting_currency  the var (null when none is configured),
      fx_rate             the rate the user supplied for the row's currency and date (int_fx_rates),
                          1 when the row is already in the reporting currency, null when no rate
                          covers it: a rate is never invented, carried over or looked up online,
      spend_reporting     round(spend * fx_rate, 2), null when fx_rate is.
    A model joins int_fx_rates with meta_fx_join() and selects meta_reporting_columns().
-#}

{% macro meta_reporting_currency() -%}
    {%- set currency = var('reporting_currency', none) -%}
    {{ return((currency | string | upper | trim) if currency else none) }}
{%- endmacro %}


{% macro meta_fx_join(fx, currency, date) -%}
    {#- The join condition from a row (its currency and date expressions) to its rate in `fx`. -#}
    {%- set reporting = meta_reporting_currency() -%}
    {%- if reporting -%}
        {{ fx }}.reporting_currency = '{{ reporting }}'
        and {{ fx }}.currency = {{ currency }}
        and {{ date }} >= {{ fx }}.valid_from
        and ({{ fx }}.valid_to is null or {{ date }} <= {{ fx }}.valid_to)
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}


{% macro meta_fx_rate(fx, currency) -%}
    {%- set reporting = meta_reporting_currency() -%}
    {%- if reporting -%}
        cast(case when {{ currency }} = '{{ reporting }}' then 1 else {{ fx }}.rate end as decimal(18,10))
    {%- else -%}
        cast(null as decimal(18,10))
    {%- endif -%}
{%- endmacro %}


{% macro meta_reporting_currency_value() -%}
    {#- The reporting currency as a SQL value (null when none is configured). -#}
    {%- set reporting = meta_reporting_currency() -%}
    {%- if reporting -%}cast('{{ reporting }}' as varchar){%- else -%}cast(null as varchar){%- endif -%}
{%- endmacro %}


{% macro meta_spend_reporting(spend, fx_rate) -%}
    {#- Spend in the reporting currency: round(spend * fx_rate, 2), null when fx_rate is. -#}
    cast(round({{ spend }} * {{ fx_rate }}, 2) as decimal(18,2))
{%- endmacro %}


{% macro meta_reporting_columns(spend, currency, fx='fx') -%}
    {{ meta_reporting_currency_value() }} as reporting_currency,
    {{ meta_fx_rate(fx, currency) }} as fx_rate,
    {{ meta_spend_reporting(spend, meta_fx_rate(fx, currency)) }} as spend_reporting
{%- endmacro %}


{% macro meta_refresh_reporting_currency(spend='spend', currency='currency', date='date') -%}
    {#-
        Post-hook of the incremental marts with money: an incremental run rebuilds only the lookback
        window, so rows before it get the current reporting currency and rates here (rates the user
        added or corrected later, or another reporting currency). Decided per (currency, date), the
        grain of a rate: a narrow aggregate over the rows before the window finds the pairs whose
        written reporting_currency / fx_rate differ from the current ones (or whose spend_reporting is
        not round(spend * fx_rate, 2)), and only their rows are written; a run with unchanged rates
        writes nothing (the window's rows were just written with the current rates).
    -#}
    {%- if execute and is_incremental() -%}
        {%- set before_window = date ~ ' < ' ~ meta_window_start() -%}
        update {{ this }} as mart
        set reporting_currency = stale.reporting_currency,
            fx_rate = stale.fx_rate,
            spend_reporting = {{ meta_spend_reporting('mart.' ~ spend, 'stale.fx_rate') }}
        from (
            select distinct
                rated.currency,
                rated.date,
                rated.reporting_currency,
                rated.fx_rate,
            from (
                select
                    written.*,
                    {{ meta_reporting_currency_value() }} as reporting_currency,
                    {{ meta_fx_rate('fx', 'written.currency') }} as fx_rate,
                from (
                    select
                        {{ currency }} as currency,
                        {{ date }} as date,
                        reporting_currency as written_reporting_currency,
                        fx_rate as written_fx_rate,
                        bool_and(
                            spend_reporting is not distinct from {{ meta_spend_reporting(spend, 'fx_rate') }}
                        ) as spend_reporting_consistent,
                    from {{ this }}
                    where {{ before_window }}
                    group by all
                ) as written
                left join {{ ref('int_fx_rates') }} as fx
                    on {{ meta_fx_join('fx', 'written.currency', 'written.date') }}
            ) as rated
            where not rated.spend_reporting_consistent
                or rated.written_reporting_currency is distinct from rated.reporting_currency
                or rated.written_fx_rate is distinct from rated.fx_rate
        ) as stale
        where mart.{{ before_window }}
            and mart.{{ date }} = stale.date
            and mart.{{ currency }} is not distinct from stale.currency
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
