//! The storage test suite, run against every backend: SQLite (a temporary file), MariaDB/MySQL
//! (`CHAT_TEST_MYSQL_URL`, default `mysql://chat:chat@127.0.0.1:3306`) and PostgreSQL
//! (`CHAT_TEST_POSTGRES_URL`, default `postgres://chat:chat@127.0.0.1:5432`). Each test gets a
//! fresh database, dropped afterwards. A missing server fails the test; nothing is skipped.

mod suite;

macro_rules! backend_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let h = crate::suite::Harness::new(crate::suite::Backend::Sqlite).await;
                    crate::suite::$case(&h).await;
                    h.finish().await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let h = crate::suite::Harness::new(crate::suite::Backend::MySql).await;
                    crate::suite::$case(&h).await;
                    h.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let h = crate::suite::Harness::new(crate::suite::Backend::Postgres).await;
                    crate::suite::$case(&h).await;
                    h.finish().await;
                }
            )*
        }
    };
}

backend_tests!(
    migrations_are_idempotent,
    concurrent_sends_are_gapless,
    concurrent_retries_store_one_message,
    batch_with_duplicates_and_threads,
    edit_reaction_delete_append_one_event_each,
    edit_history_is_kept,
    reactions_are_idempotent,
    pins_are_idempotent,
    member_events,
    member_ids_of_several_conversations,
    member_ids_of_spans_chunks,
    conversation_with_member_matches_separate_reads,
    co_member_ids_lists_users_sharing_a_conversation,
    read_positions_are_monotonic_and_clamped,
    unread_and_mention_counts,
    events_after_and_message_windows,
    outbox_pending_ordered_and_marked,
    outbox_finds_row_that_committed_late,
    refresh_token_rotation_is_single_use,
    refresh_family_revocation_spares_other_families,
    signing_key_insert_if_absent_agrees,
    username_conflict_and_lookup,
    dm_key_conflict,
    conversation_update_appends_event,
    attachment_upload_life_cycle,
    send_attaches_in_its_transaction,
    send_refuses_foreign_or_used_attachments,
    delete_hides_attachments,
    stale_attachments_for_cleanup,
    batch_spans_conversations_and_an_unknown_one,
    batch_repeats_after_a_refused_first_occurrence,
    batch_threads_within_the_batch,
    batch_mentions_are_stored_per_message,
    large_batch_spans_statement_chunks,
    concurrent_batches_over_shared_conversations,
    client_ids_differing_in_trailing_spaces,
    full_text_follows_sends_edits_and_deletes,
    full_text_off_leaves_writes_out_of_the_index,
    full_text_on_again_rebuilds_the_index,
);
