-- One row per message_id: the same message recurs in every conversation snapshot that reached it;
-- the latest extraction wins (logic in macro meta_latest_messages, shared with int_messages_classified).
select * from {{ meta_latest_messages(ref('stg_meta__messages')) }} as latest_messages
