{% macro meta_action_types(flag) -%}
    {#-
        The action types the seed meta_action_types flags with `flag` (counts_as_lead,
        counts_as_conversation_started), as a SQL list literal for an `in (...)` test, read when the
        model runs (the seed is built first in `dbt build`). Inlining the few constants makes the
        per-row filter of the `actions` array ~2x faster than joining the mapping in SQL. Before the
        seed exists (e.g. `dbt compile` on an empty database) it reads the seed's CSV file.
    -#}
    {%- if not execute -%}{{ return("('')") }}{%- endif -%}
    {#- the seed lives in the target schema (no custom schema); `graph` is empty inside unit tests -#}
    {%- set seed = adapter.get_relation(database=target.database, schema=target.schema, identifier='meta_action_types') -%}
    {%- if seed is not none -%}
        {%- set source_sql = seed -%}
    {%- else -%}
        {%- set node = graph.get('nodes', {}).get('seed.meta_ads.meta_action_types') -%}
        {%- if node is none -%}
            {{ exceptions.raise_compiler_error("meta_action_types: seed not built and not found in the graph; run `dbt seed` first") }}
        {%- endif -%}
        {%- set source_sql = "read_csv('" ~ node.root_path ~ "/" ~ node.original_file_path ~ "', header = true, all_varchar = true)" -%}
    {%- endif -%}
    {%- set query -%}
        select distinct lower(action_type) from {{ source_sql }}
        where cast({{ flag }} as boolean) order by 1
    {%- endset -%}
    {%- set types = run_query(query).columns[0].values() -%}
    {%- if types | length == 0 -%}{{ return("('')") }}{%- endif -%}
    {{ return("(" ~ (types | map('tojson') | join(', ') | replace('"', "'")) ~ ")") }}
{%- endmacro %}
