//! Attachments: the upload life cycle, attaching in the send's transaction (only the sender's
//! own pending uploads of that conversation, each once), reading messages with their
//! attachments, hiding them on delete, and what the cleanup finds.

use chat_domain::{
    Attachment, AttachmentId, AttachmentStatus, ConversationId, EventPayload, Millis, SeqWindow, UserId,
};
use chat_storage::{AttachmentStore, MessageStore, SendOutcome, StoreError};

use super::{Harness, all_events, channel, new_msg, send, user};

fn uploading(conv: ConversationId, uploader: UserId, name: &str, at: Millis) -> Attachment {
    let id = AttachmentId::new();
    Attachment {
        id,
        conversation_id: conv,
        uploader_id: uploader,
        message_id: None,
        name: name.into(),
        content_type: "image/png".into(),
        size: 0,
        width: None,
        height: None,
        sha256: String::new(),
        object_key: format!("{conv}/{id}"),
        status: AttachmentStatus::Uploading,
        created_at: at,
        deleted_at: None,
    }
}

/// Inserts and completes an upload; returns it as stored (`PENDING`).
async fn pending(h: &Harness, conv: ConversationId, uploader: UserId, name: &str) -> Attachment {
    let mut a = uploading(conv, uploader, name, Millis::now());
    h.store.insert_attachment(&a).await.unwrap();
    a.size = 1234;
    a.sha256 = "ab".repeat(32);
    a.width = Some(640);
    a.height = Some(480);
    a.status = AttachmentStatus::Pending;
    assert!(h.store.complete_upload(&a).await.unwrap());
    a
}

pub async fn attachment_upload_life_cycle(h: &Harness) {
    let s = &h.store;
    let alice = user(s, "alice").await;
    let (conv, _) = channel(s, &[alice.id]).await;
    let mut a = uploading(conv, alice.id, "photo é.png", Millis::now());
    s.insert_attachment(&a).await.unwrap();
    assert!(matches!(s.insert_attachment(&a).await, Err(StoreError::Conflict(_))), "ids are unique");
    assert_eq!(s.attachment(a.id).await.unwrap().unwrap(), a, "an UPLOADING row reads back as written");
    a.size = 99;
    a.sha256 = "cd".repeat(32);
    a.width = Some(3);
    a.height = Some(2);
    a.status = AttachmentStatus::Pending;
    assert!(s.complete_upload(&a).await.unwrap());
    assert!(!s.complete_upload(&a).await.unwrap(), "completing twice is refused");
    assert_eq!(s.attachment(a.id).await.unwrap().unwrap(), a, "metadata round-trips");
    assert!(s.set_attachment_status(a.id, AttachmentStatus::Pending, AttachmentStatus::Purging).await.unwrap());
    assert!(!s.set_attachment_status(a.id, AttachmentStatus::Pending, AttachmentStatus::Purging).await.unwrap());
    assert!(!s.remove_attachment(a.id, AttachmentStatus::Pending).await.unwrap(), "status must match");
    assert!(s.remove_attachment(a.id, AttachmentStatus::Purging).await.unwrap());
    assert_eq!(s.attachment(a.id).await.unwrap(), None);
    assert_eq!(s.attachment(AttachmentId::new()).await.unwrap(), None);
}

pub async fn send_attaches_in_its_transaction(h: &Harness) {
    let s = &h.store;
    let (alice, bob) = (user(s, "alice").await, user(s, "bob").await);
    let (conv, _) = channel(s, &[alice.id, bob.id]).await;
    let a1 = pending(h, conv, alice.id, "a.png").await;
    let a2 = pending(h, conv, alice.id, "b.png").await;
    let mut m = new_msg(conv, alice.id, Some("with-files"), "look");
    m.attachment_ids = vec![a2.id, a1.id];
    let sent = send(s, m.clone()).await;
    let ids: Vec<AttachmentId> = sent.attachments.iter().map(|i| i.attachment_id).collect();
    assert_eq!(ids, vec![a1.id, a2.id], "in upload order");
    assert_eq!(sent.attachments[0].width, Some(640));
    assert_eq!(sent.attachments[0].name, "a.png");
    // Read back: the same message, attachments included.
    assert_eq!(s.message(sent.id).await.unwrap().unwrap(), sent);
    let window = SeqWindow { after_seq: Some(0), before_seq: None, limit: 50 };
    let listed = s.messages(conv, window).await.unwrap();
    assert_eq!(listed.last().unwrap(), &sent);
    // The MESSAGE event carries them.
    let events = all_events(s, conv).await;
    match &events.last().unwrap().payload {
        EventPayload::Message { message, .. } => assert_eq!(message.attachments, sent.attachments),
        other => panic!("expected MESSAGE, got {other:?}"),
    }
    let stored = s.attachment(a1.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.message_id), (AttachmentStatus::Attached, Some(sent.id)));
    // A retry with the same client id returns the original and changes nothing.
    let out = s.append_messages(&[m]).await.unwrap().pop().unwrap().unwrap();
    assert!(matches!(out, SendOutcome::Duplicate { ref message } if *message == sent));
}

pub async fn send_refuses_foreign_or_used_attachments(h: &Harness) {
    let s = &h.store;
    let (alice, bob) = (user(s, "alice").await, user(s, "bob").await);
    let (conv, _) = channel(s, &[alice.id, bob.id]).await;
    let (other, _) = channel(s, &[alice.id]).await;
    let bobs = pending(h, conv, bob.id, "bob.png").await;
    let elsewhere = pending(h, other, alice.id, "other.png").await;
    let mine = pending(h, conv, alice.id, "mine.png").await;
    let unfinished = uploading(conv, alice.id, "partial.png", Millis::now());
    s.insert_attachment(&unfinished).await.unwrap();
    let seq_before = all_events(s, conv).await.len();
    for (why, ids) in [
        ("someone else's upload", vec![bobs.id]),
        ("another conversation's upload", vec![elsewhere.id]),
        ("an unfinished upload", vec![unfinished.id]),
        ("an unknown id", vec![AttachmentId::new()]),
        ("the same upload twice", vec![mine.id, mine.id]),
    ] {
        let mut m = new_msg(conv, alice.id, None, why);
        m.attachment_ids = ids;
        let out = s.append_messages(&[m]).await.unwrap().pop().unwrap();
        assert!(matches!(out, Err(StoreError::Conflict(_))), "{why}: {out:?}");
    }
    assert_eq!(all_events(s, conv).await.len(), seq_before, "refused sends append nothing");
    assert_eq!(s.attachment(mine.id).await.unwrap().unwrap().status, AttachmentStatus::Pending);
    // One batch, two sends claiming the same upload: the first gets it, the second fails
    // alone, and the batch's other send is stored.
    let mut first = new_msg(conv, alice.id, None, "first");
    first.attachment_ids = vec![mine.id];
    let mut second = new_msg(conv, alice.id, None, "second");
    second.attachment_ids = vec![mine.id];
    let plain = new_msg(conv, alice.id, None, "plain");
    let out = s.append_messages(&[first, second, plain]).await.unwrap();
    assert!(matches!(&out[0], Ok(SendOutcome::Created { message, .. }) if message.attachments.len() == 1));
    assert!(matches!(&out[1], Err(StoreError::Conflict(_))), "{:?}", out[1]);
    assert!(matches!(&out[2], Ok(SendOutcome::Created { .. })));
    let seqs: Vec<i64> = all_events(s, conv).await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "gap-free");
}

pub async fn delete_hides_attachments(h: &Harness) {
    let s = &h.store;
    let alice = user(s, "alice").await;
    let (conv, _) = channel(s, &[alice.id]).await;
    let a = pending(h, conv, alice.id, "gone.pdf").await;
    let mut m = new_msg(conv, alice.id, None, "doomed");
    m.attachment_ids = vec![a.id];
    let sent = send(s, m).await;
    assert_eq!(sent.attachments.len(), 1);
    let edited = s
        .edit_message(&chat_storage::MessageEdit {
            id: sent.id,
            editor: alice.id,
            text: "edited".into(),
            mentions: Default::default(),
            at: Millis::now(),
            event_id: chat_domain::EventId::new(),
        })
        .await
        .unwrap()
        .0;
    assert_eq!(edited.attachments, sent.attachments, "edits keep attachments");
    let at = Millis::now();
    let (tomb, event) = s.delete_message(sent.id, alice.id, at).await.unwrap().unwrap();
    assert!(tomb.attachments.is_empty());
    match event.payload {
        EventPayload::MessageDeleted { message } => assert!(message.attachments.is_empty()),
        other => panic!("expected MESSAGE_DELETED, got {other:?}"),
    }
    assert!(s.message(sent.id).await.unwrap().unwrap().attachments.is_empty());
    let stored = s.attachment(a.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.deleted_at), (AttachmentStatus::Deleted, Some(at)));
}

pub async fn stale_attachments_for_cleanup(h: &Harness) {
    let s = &h.store;
    let alice = user(s, "alice").await;
    let (conv, _) = channel(s, &[alice.id]).await;
    let old = Millis(Millis::now().0 - 48 * 3600 * 1000);
    let old_uploading = uploading(conv, alice.id, "old-partial", old);
    s.insert_attachment(&old_uploading).await.unwrap();
    let mut old_pending = uploading(conv, alice.id, "old-pending", Millis(old.0 + 1));
    s.insert_attachment(&old_pending).await.unwrap();
    old_pending.status = AttachmentStatus::Pending;
    assert!(s.complete_upload(&old_pending).await.unwrap());
    let fresh = pending(h, conv, alice.id, "fresh").await;
    let attached = pending(h, conv, alice.id, "kept").await;
    let deleted = pending(h, conv, alice.id, "deleted").await;
    let mut m = new_msg(conv, alice.id, None, "keep");
    m.attachment_ids = vec![attached.id];
    send(s, m).await;
    let mut m = new_msg(conv, alice.id, None, "drop");
    m.attachment_ids = vec![deleted.id];
    let dropped = send(s, m).await;
    s.delete_message(dropped.id, alice.id, Millis::now()).await.unwrap();

    let cutoff = Millis(Millis::now().0 - 24 * 3600 * 1000);
    let stale: Vec<AttachmentId> = s.stale_attachments(cutoff, 100).await.unwrap().iter().map(|a| a.id).collect();
    assert_eq!(stale, vec![old_uploading.id, old_pending.id, deleted.id], "oldest first; not fresh, not attached");
    assert!(!stale.contains(&fresh.id));
    let limited = s.stale_attachments(cutoff, 1).await.unwrap();
    assert_eq!(limited.len(), 1);
}
