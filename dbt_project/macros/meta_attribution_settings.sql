{% macro meta_attribution_settings(column) -%}
{#-
    The distinct attribution settings of a group's Insights rows, sorted, joined by '; ' (a setting
    itself reads like 7d_click,1d_view); null when no row has one (leads only). Since 2025-06-10 Meta
    counts each ad set's actions under that ad set's own setting (research/meta_api_facts.md,
    use_unified_attribution_setting ignored), and it refuses to total them: "Metrics will not be
    available ... when there is an attempted aggregation across multiple attribution settings"
    (research/transform_anchors.md). A group showing more than one setting sums leads counted under
    different rules: the column says so beside the sum.
-#}
string_agg(distinct {{ column }}, '; ' order by {{ column }})
{%- endmacro %}
