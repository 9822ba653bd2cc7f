-- Each currency pair has at most one rate per date (int_fx_rates): overlapping validity ranges
-- would make the rate of a day ambiguous. Fails naming the pair and the two ranges.
{{ config(severity='error') }}
select
    first_rate.currency,
    first_rate.reporting_currency,
    first_rate.valid_from,
    first_rate.valid_to,
    second_rate.valid_from as overlapping_valid_from,
    second_rate.valid_to as overlapping_valid_to,
from {{ ref('int_fx_rates') }} as first_rate
inner join {{ ref('int_fx_rates') }} as second_rate
    on second_rate.currency = first_rate.currency
    and second_rate.reporting_currency = first_rate.reporting_currency
    and second_rate.valid_from >= first_rate.valid_from
    and (first_rate.valid_to is null or second_rate.valid_from <= first_rate.valid_to)
    and (
        second_rate.valid_from > first_rate.valid_from
        or coalesce(second_rate.valid_to, date '9999-12-31')
        > coalesce(first_rate.valid_to, date '9999-12-31')
        or second_rate.rate != first_rate.rate
    )
