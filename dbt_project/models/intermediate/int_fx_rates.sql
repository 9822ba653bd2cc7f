-- The exchange rates the user supplies for the optional reporting currency (var reporting_currency):
-- the seed `fx_rates` (seeds/fx_rates.csv, empty by default), or the CSV / Parquet file named by var
-- fx_rates_path (config: marts.fx_rates_path) with the same columns:
--   currency            ISO 4217 code of an ad account's currency (e.g. INR),
--   reporting_currency  ISO 4217 code of the reporting currency (e.g. EUR),
--   rate                units of reporting_currency for one unit of currency (> 0),
--   valid_from          first account-local date the rate applies to,
--   valid_to            last date it applies to (empty: open-ended).
-- Daily rates: valid_from = valid_to; a monthly rate: the month's first and last day. Ranges of one
-- currency pair must not overlap (tested). Only what is listed here is used: a day no row covers has
-- no rate in the marts (null), never a neighbouring one.
-- depends_on: {{ ref('fx_rates') }}
{%- set path = var('fx_rates_path', none) %}
with

rates as (

    {% if path -%}
    select *
    from {{ "read_parquet" if path.lower().endswith(".parquet") else "read_csv" }}('{{ path | replace("'", "''") }}'{{ "" if path.lower().endswith(".parquet") else ", header = true, all_varchar = true" }})
    {%- else -%}
    select * from {{ ref('fx_rates') }}
    {%- endif %}

),

typed as (

    select distinct
        upper(trim(cast(currency as varchar))) as currency,
        upper(trim(cast(reporting_currency as varchar))) as reporting_currency,
        cast(rate as decimal(18, 10)) as rate,
        cast(valid_from as date) as valid_from,
        cast(nullif(trim(cast(valid_to as varchar)), '') as date) as valid_to,
    from rates

)

select * from typed
