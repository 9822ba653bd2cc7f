{% macro meta_latest_messages(messages_relation, snapshots_since=none) -%}
    {#-
        One row per message_id from the message snapshots (the latest extraction wins; ties: the latest
        snapshot). `snapshots_since` (SQL date) reads only recent snapshot partitions: every snapshot
        holds all reachable messages of the conversations updated in its window, so the recent ones
        are enough to classify the messages of the incremental window.
    -#}
    (
        with

        messages as (

            select * from {{ messages_relation }}
            {% if snapshots_since is not none -%}
            where snapshot_date >= {{ snapshots_since }}
            {%- endif %}

        ),

        duplicated_keys as (

            select
                message_id,
                max({'extracted_at': extracted_at, 'snapshot_date': snapshot_date}) as latest,
            from messages
            group by message_id
            having count(*) > 1

        )

        select messages.*
        from messages
        left join duplicated_keys on duplicated_keys.message_id = messages.message_id
        where duplicated_keys.message_id is null
            or (
                messages.extracted_at = duplicated_keys.latest.extracted_at
                and messages.snapshot_date = duplicated_keys.latest.snapshot_date
            )
    )
{%- endmacro %}
