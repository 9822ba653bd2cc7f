{% macro meta_latest_messages(messages_relation, snapshots_since=none) -%}
    {#-
        One row per message_id from the message snapshots: a row with the sender (details) wins over one
        without (a message beyond the 20 most recent in a later snapshot keeps what an earlier snapshot
        saw: senders never change), then the latest extraction, then the latest snapshot. `snapshots_since` (SQL date) reads only recent snapshot partitions: every snapshot
        holds all reachable messages of the conversations updated in its window, so the recent ones
        are enough to classify the messages of the incremental window.
        Repeated message_ids are found in two steps, so DuckDB aggregates one 64-bit hash per row
        instead of the 5M message_id strings: the hashes seen more than once, then the exact
        per-message_id check on those rows only. Each CTE reads the relation itself (a CTE used twice
        would be materialized with every column).
    -#}
    {%- set since_filter -%}
        {%- if snapshots_since is not none %} where snapshot_date >= {{ snapshots_since }}{% endif -%}
    {%- endset -%}
    (
        with

        messages as (

            select * from {{ messages_relation }}{{ since_filter }}

        ),

        repeated_hashes as (

            select hash(message_id) as message_hash,
            from {{ messages_relation }}{{ since_filter }}
            group by message_hash
            having count(*) > 1

        ),

        duplicated_keys as (

            select
                message_id,
                max({
                    'sender_known': is_from_page is not null,
                    'extracted_at': extracted_at,
                    'snapshot_date': snapshot_date
                }) as latest,
            from (select * from {{ messages_relation }}{{ since_filter }}) as candidates
            where hash(message_id) in (select repeated_hashes.message_hash from repeated_hashes)
            group by message_id
            having count(*) > 1

        )

        select messages.*
        from messages
        left join duplicated_keys on duplicated_keys.message_id = messages.message_id
        where duplicated_keys.message_id is null
            or (
                (messages.is_from_page is not null) = duplicated_keys.latest.sender_known
                and messages.extracted_at = duplicated_keys.latest.extracted_at
                and messages.snapshot_date = duplicated_keys.latest.snapshot_date
            )
    )
{%- endmacro %}
